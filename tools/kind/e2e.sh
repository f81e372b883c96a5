#!/usr/bin/env bash
# Flowline end to end on a real Kubernetes cluster (kind) with emulated NICs.
#
#   tools/kind/e2e.sh [--dry-run] [--keep] [--cluster NAME] [--tag TAG] [STEP...]
#
# Steps, in order (default: all of them):
#   prereqs   docker (with a reachable engine), kind, kubectl, helm, node; the traffic driver built
#   cluster   kind create cluster with tools/kind/kind-config.yaml
#   underlay  a Docker network (MTU 1600) joining the workers as eth1: the underlay of the Geneve
#             tunnels between their switches (the chain crosses them)
#   images    docker build of every image from the repository's Dockerfiles (docker/README.md)
#   load      kind load docker-image of the Flowline images into every node
#   nodes     on each node (docker exec): reserve 2 MiB hugepages, create emulated NICs (veth pairs
#             and the sysfs-shaped tree of `flowline-emulate create --veth`, packages/emulation,
#             taken from the builder image), restart kubelet so it reports hugepages-2Mi
#   multus    Multus (thin plugin) for the k8s.v1.cni.cncf.io/networks annotation
#   flowline  helm install charts/flowline; wait for flowline.io/sriov_vf on the worker; a probe pod
#             that gets a VF through the device plugin's Allocate
#   nfs       helm install charts/network-function three times: traffic-gen, firewall, router
#   chain     a ServiceChain traffic-gen/net1 -> firewall -> router -> traffic-gen/net2, until Ready
#   traffic   the traffic plan (tools/kind/e2e-plan.json) through the NFs' gRPC APIs: allowed flows
#             delivered, denied flows dropped by the firewall, nothing lost
#   teardown  kind delete cluster and the underlay network (skipped with --keep; also run on
#             failure, after diagnostics)
#
# --dry-run prints every command it would run, in order, and runs none of them (no Docker needed).
#
# This script cannot run on the Flowline development machine: it has no Docker engine, and kind
# runs every Kubernetes node as a Docker container. `npm test` runs shellcheck on it and checks its
# dry run; .github/workflows/kind-e2e.yml runs it for real on a GitHub runner.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

kind_dir=tools/kind
cluster=flowline-e2e
tag=e2e
dry_run=0
keep=0
steps=()
all_steps=(prereqs cluster underlay images load nodes multus flowline nfs chain traffic teardown)

multus_version=v4.2.2
# The thin plugin: kubelet's runtime executes it, and so the flowline plugin it delegates to, on
# the node itself, where the plugin's Node.js runtime (/opt/flowline), OVS's db.sock and the
# vhost socket dir are. The thick plugin would run delegates inside its own pod, without them.
multus_manifest="https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/${multus_version}/deployments/multus-daemonset.yml"
flowline_ns=flowline
nf_ns=flowline-e2e
# 2 MiB pages for the whole cluster (the nodes share the host's kernel): two OVS of 512 MiB and
# three NFs of 256 MiB each, plus headroom.
hugepages=1024
# The underlay: a Docker network, each worker's leg eth1 with an address of this /24 (.11, .12...).
underlay_subnet=172.31.250
underlay_mtu=1600
# The emulated NIC of every node: PF ens1f0 with 4 kernel VFs (veth pairs), NUMA node 0.
emulated_root=/var/lib/flowline/emulated-sysfs
emulated_pf=ens1f0:4:0
emulated_vfs=4
emu_dir=/opt/flowline-emu
host_dir=/tmp/flowline-kind
timeout=600s

# The images, in build order (docker/README.md): name=Dockerfile. The first two are bases.
images=(
  "flowline/builder:dev=docker/builder.Dockerfile"
  "flowline/dpdk-runtime:dev=docker/dpdk-runtime.Dockerfile"
  "ovs-dpdk=docker/ovs-dpdk/Dockerfile"
  "device-plugin=device-plugin/Dockerfile"
  "cni-plugin=cni-plugin/Dockerfile"
  "chain-controller=services/chain-controller/Dockerfile"
  "firewall=services/firewall/Dockerfile"
  "router=services/router/Dockerfile"
  "traffic-gen=services/traffic-gen/Dockerfile"
  "ipsec-gw=services/ipsec-gw/Dockerfile"
)
registry=ghcr.io/flowline
nfs=(traffic-gen firewall router)
# Local ports for the NFs' gRPC servers (kubectl port-forward), in the order of nfs.
grpc_ports=(15051 15052 15053)
port_forward_pids=()
touched_cluster=0

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "e2e.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --keep) keep=1 ;;
    --cluster)
      [ $# -ge 2 ] || die "--cluster needs a name"
      cluster="$2"
      shift
      ;;
    --tag)
      [ $# -ge 2 ] || die "--tag needs an image tag"
      tag="$2"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      case " ${all_steps[*]} " in
        *" $1 "*) steps+=("$1") ;;
        *) die "unknown step $1; steps: ${all_steps[*]}" ;;
      esac
      ;;
  esac
  shift
done
[ ${#steps[@]} -gt 0 ] || steps=("${all_steps[@]}")

# The plan (step headers and every command) goes to fd 3, the script's stdout, even from inside
# command substitutions.
exec 3>&1

# One word as a shell reads it: bare when it is safe, else in single quotes.
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Prints a command as a shell would read it, then runs it unless this is a dry run.
run() {
  local word line='+'
  for word in "$@"; do line+=" $(quote "$word")"; done
  printf '%s\n' "$line" >&3
  [ "$dry_run" -eq 1 ] && return 0
  "$@"
}

# The same for a pipeline or redirection, given as one shell string.
run_sh() {
  printf '+ %s\n' "$1" >&3
  [ "$dry_run" -eq 1 ] && return 0
  bash -o pipefail -c "$1"
}

# A command whose output the script uses; in a dry run it prints the command and echoes $2.
capture() {
  local cmd="$1" dry_value="$2"
  printf '+ %s\n' "$cmd" >&3
  if [ "$dry_run" -eq 1 ]; then
    printf '%s\n' "$dry_value"
    return 0
  fi
  bash -o pipefail -c "$cmd"
}

step() {
  printf '==> %s\n' "$1" >&3
}

image_ref() {
  local name="$1"
  case "$name" in
    */*) printf '%s\n' "$name" ;;
    *) printf '%s/%s:%s\n' "$registry" "$name" "$tag" ;;
  esac
}

# Node names: kind's, or in a dry run those kind-config.yaml will give (<cluster>-control-plane,
# <cluster>-worker, <cluster>-worker2, ...).
nodes() {
  local workers i names
  workers="$(grep -c 'role: worker' "$kind_dir/kind-config.yaml" || true)"
  names="$cluster-control-plane"
  for ((i = 1; i <= workers; i++)); do
    if [ "$i" -eq 1 ]; then names+=" $cluster-worker"; else names+=" $cluster-worker$i"; fi
  done
  capture "kind get nodes --name $cluster" "$(tr ' ' '\n' <<<"$names")"
}

wait_until() {
  # wait_until <description> <seconds> <shell condition>
  local what="$1" seconds="$2" condition="$3" i
  printf '+ until %s; do sleep 2; done  # %s, at most %ss\n' "$condition" "$what" "$seconds" >&3
  [ "$dry_run" -eq 1 ] && return 0
  for ((i = 0; i < seconds; i += 2)); do
    if bash -o pipefail -c "$condition" >/dev/null 2>&1; then return 0; fi
    sleep 2
  done
  die "timed out after ${seconds}s waiting for: $what"
}

need() {
  # need <command> <what it is for> <how to install>
  if [ "$dry_run" -eq 1 ]; then
    printf '+ command -v %s\n' "$1" >&3
    return 0
  fi
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: it is needed $2. Install it: $3"
}

step_prereqs() {
  step prereqs
  need docker "to run the kind nodes and build the images" "https://docs.docker.com/engine/install/"
  need kind "to create the cluster" "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  need kubectl "to talk to the cluster" "https://kubernetes.io/docs/tasks/tools/"
  need helm "to install charts/flowline and charts/network-function" "https://helm.sh/docs/intro/install/"
  need node "for the traffic driver (tools/kind/dist/traffic.js)" "Node.js 20, then npm ci"
  if [ "$dry_run" -eq 0 ] && ! docker info >/dev/null 2>&1; then
    die "docker is installed but its engine is not reachable (docker info failed): start the Docker engine, or run where one exists (the Flowline development machine has none; CI does)"
  fi
  [ "$dry_run" -eq 1 ] && printf '+ docker info\n'
  if [ "$dry_run" -eq 0 ] && [ ! -f "$kind_dir/dist/traffic.js" ]; then
    die "$kind_dir/dist/traffic.js is missing: run npm ci && npx nx build @flowline/kind first"
  fi
}

step_cluster() {
  step cluster
  local n
  # kind-config.yaml mounts these host folders into the nodes (the vhost-user socket dirs).
  for n in control-plane worker worker2; do run mkdir -p "$host_dir/$n/vhost"; done
  run kind create cluster --name "$cluster" --config "$kind_dir/kind-config.yaml" --wait 180s
  run kubectl cluster-info --context "kind-$cluster"
}

step_underlay() {
  step underlay
  local net="flowline-underlay-$cluster" worker i=10
  run_sh "docker network inspect $net >/dev/null 2>&1 || docker network create --driver bridge --subnet $underlay_subnet.0/24 --opt com.docker.network.driver.mtu=$underlay_mtu $net"
  for worker in $(nodes | grep -- '-worker'); do
    i=$((i + 1))
    run_sh "docker inspect --format '{{json .NetworkSettings.Networks}}' $worker | grep -q '\"$net\"' || docker network connect --ip $underlay_subnet.$i $net $worker"
    # The leg is eth1 (the second network the node joined): the chart's ovs.underlay.device.
    run docker exec "$worker" ip -4 -brief addr show dev eth1
  done
}

step_images() {
  step images
  local entry name file
  for entry in "${images[@]}"; do
    name="${entry%%=*}"
    file="${entry#*=}"
    run docker build --tag "$(image_ref "$name")" --file "$file" .
  done
}

step_load() {
  step load
  local entry name refs=()
  for entry in "${images[@]:2}"; do
    name="${entry%%=*}"
    refs+=("$(image_ref "$name")")
  done
  run kind load docker-image --name "$cluster" "${refs[@]}"
}

step_nodes() {
  step nodes
  local node src
  # The emulated-NIC tool is @flowline/emulation's flowline-emulate, a test double the device
  # plugin's image does not carry: it comes from the builder image (the whole workspace, built and
  # pruned). The nodes have no Node.js, so the image's node binary and workspace are copied in.
  src="flowline-emu-src-$cluster"
  run docker create --name "$src" "$(image_ref "${images[0]%%=*}")"
  for node in $(nodes); do
    # The nodes share the host's kernel: raise the count only, then check it took.
    run docker exec "$node" sh -c "test \$(cat /proc/sys/vm/nr_hugepages) -ge $hugepages || echo $hugepages > /proc/sys/vm/nr_hugepages"
    run docker exec "$node" sh -c "test \$(cat /proc/sys/vm/nr_hugepages) -ge $hugepages || { echo 'could not reserve $hugepages hugepages: host memory short or fragmented' >&2; exit 1; }"
    run docker exec "$node" sh -c "mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages"
    run docker exec "$node" mkdir -p "$emu_dir/bin"
    run_sh "docker cp $src:/usr/local/bin/node - | docker exec -i $node tar -x -C $emu_dir/bin"
    run_sh "docker cp $src:/app - | docker exec -i $node tar -x -C $emu_dir"
    run docker exec "$node" "$emu_dir/bin/node" "$emu_dir/app/packages/emulation/dist/cli.js" \
      create --root "$emulated_root" --pf "$emulated_pf" --veth --hugepages host
    run docker exec "$node" ip -brief link show ens1f0v0
    run docker exec "$node" systemctl restart kubelet
  done
  run docker rm --force "$src"
  run kubectl wait --for=condition=Ready node --all --timeout="$timeout"
  for node in $(nodes); do
    wait_until "hugepages-2Mi on $node" 120 \
      "test \"\$(kubectl get node $node -o jsonpath='{.status.allocatable.hugepages-2Mi}')\" != 0 && test -n \"\$(kubectl get node $node -o jsonpath='{.status.allocatable.hugepages-2Mi}')\""
  done
}

step_multus() {
  step multus
  run kubectl apply -f "$multus_manifest"
  run kubectl -n kube-system wait --for=condition=Ready pod -l app=multus --timeout="$timeout"
}

step_flowline() {
  step flowline
  local worker
  run helm upgrade --install flowline charts/flowline --namespace "$flowline_ns" --create-namespace \
    -f "$kind_dir/values/flowline.yaml" --set "global.imageTag=$tag" --wait --timeout "$timeout"
  run kubectl -n "$flowline_ns" get pods -o wide
  for worker in $(nodes | grep -- '-worker'); do
    wait_until "$emulated_vfs flowline.io/sriov_vf on $worker" 180 \
      "test \"\$(kubectl get node $worker -o jsonpath='{.status.allocatable.flowline\\.io/sriov_vf}')\" = $emulated_vfs"
  done
  # One VF through kubelet and the device plugin's Allocate (contract 1,
  # docs/architecture.md#device-plugin-to-pod).
  run kubectl -n "$flowline_ns" apply -f "$kind_dir/manifests/vf-probe.yaml"
  run kubectl -n "$flowline_ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/vf-probe --timeout=180s
  run_sh "kubectl -n $flowline_ns logs vf-probe | tee /dev/stderr | grep -Eq '^PCIDEVICE_FLOWLINE_IO_SRIOV_VF=0000:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]\$'"
  run_sh "kubectl -n $flowline_ns logs vf-probe | grep -Eq '^FLOWLINE_NETDEV_SRIOV_VF=ens1f0v[0-9]+\$'"
  run kubectl -n "$flowline_ns" delete pod vf-probe --wait=false
}

step_nfs() {
  step nfs
  local nf
  for nf in "${nfs[@]}"; do
    run helm upgrade --install "$nf" charts/network-function --namespace "$nf_ns" --create-namespace \
      -f "$kind_dir/values/$nf.yaml" --set "flowlineNamespace=$flowline_ns" --set "image.tag=$tag" \
      --wait --timeout "$timeout"
  done
  run kubectl -n "$nf_ns" get pods -o wide
}

step_chain() {
  step chain
  run kubectl -n "$nf_ns" apply -f "$kind_dir/manifests/servicechain.yaml"
  run kubectl -n "$nf_ns" wait --for=condition=Ready servicechain/e2e --timeout=180s
  run kubectl -n "$nf_ns" get servicechain e2e -o yaml
}

stop_port_forwards() {
  local pid
  for pid in "${port_forward_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  port_forward_pids=()
}

step_traffic() {
  step traffic
  local i nf port
  for i in "${!nfs[@]}"; do
    nf="${nfs[$i]}"
    port="${grpc_ports[$i]}"
    printf '+ kubectl -n %s port-forward pod/%s-0 %s:50051 &\n' "$nf_ns" "$nf" "$port" >&3
    if [ "$dry_run" -eq 0 ]; then
      kubectl -n "$nf_ns" port-forward "pod/$nf-0" "$port:50051" >/dev/null &
      port_forward_pids+=("$!")
    fi
  done
  # The NFs are mutual TLS: the driver calls as the operator, with the certificate the flowline
  # release made (its <release>-operator-grpc-tls Secret), and checks each NF's identity.
  local tls="$host_dir/operator-tls" key
  run mkdir -p "$tls"
  for key in ca.crt tls.crt tls.key; do
    run_sh "kubectl -n $flowline_ns get secret flowline-operator-grpc-tls -o jsonpath='{.data.${key//./\\.}}' | base64 -d > $tls/$key"
  done
  run env FLOWLINE_TLS_CA="$tls/ca.crt" FLOWLINE_TLS_CERT="$tls/tls.crt" FLOWLINE_TLS_KEY="$tls/tls.key" \
    node "$kind_dir/dist/traffic.js" --plan "$kind_dir/e2e-plan.json" \
    --traffic-gen "127.0.0.1:${grpc_ports[0]}" --firewall "127.0.0.1:${grpc_ports[1]}" \
    --router "127.0.0.1:${grpc_ports[2]}" --connect-timeout-ms 60000 --nf-namespace "$nf_ns"
  stop_port_forwards
}

diagnostics() {
  echo "e2e.sh: failed; cluster state follows" >&2
  kubectl get nodes -o wide >&2 || true
  kubectl get pods -A -o wide >&2 || true
  kubectl -n "$flowline_ns" logs -l app.kubernetes.io/part-of=flowline --all-containers --tail=100 >&2 || true
  kubectl -n "$nf_ns" logs -l app.kubernetes.io/part-of=flowline --all-containers --tail=100 >&2 || true
  kubectl get events -A --sort-by=.lastTimestamp >&2 || true
}

step_teardown() {
  step teardown
  if [ "$keep" -eq 1 ]; then
    echo "--keep: cluster $cluster stays; delete it with: kind delete cluster --name $cluster"
    return 0
  fi
  stop_port_forwards
  run kind delete cluster --name "$cluster"
  run_sh "docker network rm flowline-underlay-$cluster 2>/dev/null || true"
  run rm -rf "$host_dir"
}

on_exit() {
  local status=$?
  [ "$dry_run" -eq 1 ] && return
  stop_port_forwards
  # Diagnostics and teardown only once a step worked on a cluster.
  if [ "$status" -ne 0 ] && [ "$touched_cluster" -eq 1 ]; then
    diagnostics
    case " ${steps[*]} " in *" teardown "*) step_teardown || true ;; esac
  fi
}
trap on_exit EXIT

[ "$dry_run" -eq 1 ] && echo "# dry run: commands are printed, none is run"
for s in "${steps[@]}"; do
  case "$s" in prereqs | images) ;; *) touched_cluster=1 ;; esac
  "step_$s"
done
echo "e2e.sh: ${steps[*]}: done"
