#!/bin/sh
# Runs the distributed test end to end with kubectl: the generator Job (all pods starting at
# the same second), then the merge Job. Exits with the merge's exit code: 0 every threshold
# passed, 3 a threshold failed, anything else: something broke.
#   NAMESPACE=loadtest START_IN=120 ./examples/k8s/run.sh
set -eu
cd "$(dirname "$0")"
NS=${NAMESPACE:-default}
START_IN=${START_IN:-120}   # seconds from now: time enough to schedule every pod
k() { kubectl -n "$NS" "$@"; }

# Waits until job $1 has succeeded or failed; prints which.
wait_job() {
  while :; do
    s=$(k get job "$1" -o jsonpath='{.status.succeeded}')
    f=$(k get job "$1" -o jsonpath='{.status.failed}')
    want=$(k get job "$1" -o jsonpath='{.spec.completions}')
    if [ "${f:-0}" -gt 0 ]; then echo failed; return; fi
    if [ "${s:-0}" -ge "${want:-1}" ]; then echo succeeded; return; fi
    sleep 5
  done
}

k apply -f results-pvc.yaml
k delete job loadgen loadgen-merge --ignore-not-found
start=$(( $(date +%s) + START_IN ))
sed "s/{name: START_AT, value: \"0\"}/{name: START_AT, value: \"$start\"}/" loadgen-job.yaml |
  k apply -f -
echo "generators: $(wait_job loadgen)"
k apply -f merge-job.yaml
echo "merge: $(wait_job loadgen-merge)"
k logs job/loadgen-merge
code=$(k get pods -l job-name=loadgen-merge \
  -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
echo "loadgen merge exited with ${code:-?}"
exit "${code:-1}"
