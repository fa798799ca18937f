# Sourced by the bash measurement scripts (bench-compare, rtt-compare,
# sessions-compare, bench-profile): a tunnel443 SSTP server and client in
# network namespaces joined by a veth. Functions set globals (LAB_PID,
# LAB_PIN) instead of printing, so that the processes they start stay
# children of the calling shell (for `wait` and `kill`).

# lab_pair S C DEV NET: namespaces S and C (created when missing, lo up)
# joined by the veth pair DEVs (NET.1/30, in S) and DEVc (NET.2/30, in C).
lab_pair() {
  local s=$1 c=$2 dev=$3 net=$4 n
  for n in $s $c; do
    [ -e /run/netns/$n ] || { ip netns add $n; ip -n $n link set lo up; }
  done
  ip link add ${dev}s type veth peer name ${dev}c
  ip link set ${dev}s netns $s; ip link set ${dev}c netns $c
  ip -n $s addr add $net.1/30 dev ${dev}s; ip -n $c addr add $net.2/30 dev ${dev}c
  ip -n $s link set ${dev}s up; ip -n $c link set ${dev}c up
}

# lab_del NS...: stops every process in the namespaces and deletes them.
lab_del() {
  local n
  for n in "$@"; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  sleep 0.5
  for n in "$@"; do ip netns del $n 2>/dev/null || true; done
}

# lab_user BIN DIR: user "vpn" with the password in DIR/pw, in DIR/users.
lab_user() {
  echo pw123456 > $2/pw
  $1 user add vpn --password-stdin --users-file $2/users < $2/pw >/dev/null
}

# lab_server NS BIN STATE_DIR LOG [ARGS...]: `BIN server --state-dir
# STATE_DIR ARGS` in NS; waits for its certificate and a listener on :443.
# LAB_PID: the server; LAB_PIN: its certificate's SHA-256 (--pin-sha256).
# Fails, with the end of LOG, when the server is not up within 10 s.
lab_server() {
  local ns=$1 bin=$2 st=$3 log=$4
  shift 4
  ip netns exec $ns $bin server --state-dir $st "$@" >$log 2>&1 &
  LAB_PID=$!
  for _ in $(seq 1 50); do
    if [ -s $st/cert.pem ] && ip netns exec $ns ss -ltn | grep -q ':443 '; then
      LAB_PIN=$(openssl x509 -in $st/cert.pem -outform der | sha256sum | cut -d' ' -f1)
      return 0
    fi
    sleep 0.2
  done
  echo "lab: the server in $ns did not start; the end of $log:" >&2
  tail -n 20 $log >&2
  return 1
}

# lab_client NS BIN HOST PW LOG [ARGS...]: `BIN client sstp://vpn@HOST`
# pinned to LAB_PIN with the password file PW, in NS. LAB_PID: the client.
lab_client() {
  local ns=$1 bin=$2 host=$3 pw=$4 log=$5
  shift 5
  ip netns exec $ns $bin client sstp://vpn@$host --pin-sha256 $LAB_PIN --password-file $pw "$@" >$log 2>&1 &
  LAB_PID=$!
}

# lab_wait_ping NS ADDR: true once ADDR answers from NS (30 s at most).
lab_wait_ping() {
  for _ in $(seq 1 100); do ip netns exec $1 ping -c1 -W1 -q $2 >/dev/null 2>&1 && return 0; sleep 0.3; done
  return 1
}
