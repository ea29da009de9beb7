module example.com/kube-secret-proxy-client

go 1.22
