// `npm run cluster`: a real etcd and kube-apiserver in the foreground, for
// trying the sidecar by hand. Ctrl-C or SIGTERM stops both and removes the
// temp dir.
import { ControlPlane } from './control-plane.ts'
import { binaryPath } from './build.ts'

const plane = await ControlPlane.start({ log: (line) => console.error(line) })
const stop = (): void => {
  plane.stop().then(() => process.exit(0), (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)

const kubectl = `${binaryPath} kubectl`
console.log(`kube-apiserver ${plane.state.server} is ready (admin: client certificate in system:masters)
KUBECONFIG=${plane.state.kubeconfig}

A real kubectl is built in:
  export KUBECONFIG=${plane.state.kubeconfig}
  alias kubectl='${kubectl}'

A pod's ServiceAccount directory (/var/run/secrets/kubernetes.io/serviceaccount) for the
sidecar: create a ServiceAccount, mint a token (TokenRequest API) and lay out token, ca.crt
and namespace:
  kubectl create serviceaccount danigian
  mkdir -p /tmp/sa && kubectl create token danigian --duration=1h > /tmp/sa/token
  cp ${plane.state.caFile} /tmp/sa/ca.crt && printf default > /tmp/sa/namespace
  export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=${plane.state.apiserverPort}

Ctrl-C stops the control plane and removes ${plane.state.dir}`)
