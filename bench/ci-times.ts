// Benchmark 6: the cold and warm time of .ci/run. Not timed here (a cold Go
// build takes minutes): these are the numbers measured by hand, recorded with
// the commands that produced them.

export interface CiTime {
  what: string
  command: string
  seconds: number
}

export function ciTimes (): { measured: 'by hand, not in this run', times: CiTime[] } {
  return {
    measured: 'by hand, not in this run',
    times: [
      { what: 'cold: Go build of the control plane (kube-apiserver + etcd + kubectl)', command: 'cd test/cluster/controlplane && time go build', seconds: 6 * 60 + 54 },
      { what: 'warm: .ci/run from a fresh clone (Go build cache warm)', command: 'time CI=true bash .ci/run', seconds: 4 * 60 + 24 }
    ]
  }
}
