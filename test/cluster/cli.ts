// `npm run cluster`: a real etcd and kube-apiserver in the foreground, for
// trying the sidecar by hand. Ctrl-C or SIGTERM stops both and removes the
// temp dir.
import { ControlPlane } from './control-plane.ts'

const plane = await ControlPlane.start({ log: (line) => console.error(line) })
const stop = (): void => {
  plane.stop().then(() => process.exit(0), (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)

const server = plane.state.server
console.log(`kube-apiserver ${server} is ready (admin: client certificate in system:masters)
KUBECONFIG=${plane.state.kubeconfig}

A pod's ServiceAccount directory (/var/run/secrets/kubernetes.io/serviceaccount) for the
sidecar: create a ServiceAccount, mint a token with the TokenRequest API and lay out
token, ca.crt and namespace, e.g. with kubectl:
  export KUBECONFIG=${plane.state.kubeconfig}
  kubectl create serviceaccount danigian
  mkdir -p /tmp/sa && kubectl create token danigian --duration=1h > /tmp/sa/token
  cp ${plane.state.caFile} /tmp/sa/ca.crt && echo -n default > /tmp/sa/namespace
  export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=${plane.state.apiserverPort}
(without kubectl: POST /api/v1/namespaces/default/serviceaccounts/danigian/token
 with {"spec":{"expirationSeconds":3600}} as the admin in the kubeconfig)

Ctrl-C stops the control plane and removes ${plane.state.dir}`)
