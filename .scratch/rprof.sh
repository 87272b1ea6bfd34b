#!/bin/bash
# usage: rprof.sh <script> <port> <seconds> <mode: read|create> [extra node flags]
set -e
cd /work/main; export PATH=$PWD/node_modules/.bin:$PATH
SCRIPT=$1; PORT=$2; SECS=$3; MODE=$4; shift 4
D=$(mktemp -d /tmp/rprof.XXXX); rm -rf /tmp/rprof-out-$PORT; mkdir -p /tmp/rprof-out-$PORT
export DATA_DIR=$D PORT=$PORT MASTER_KEY_PASSPHRASE=benchbenchbench LOG_LEVEL=warn
node --cpu-prof --cpu-prof-dir=/tmp/rprof-out-$PORT "$@" $SCRIPT > $D/server.log 2>&1 &
PID=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.5; done
TOKEN=$(node src/cli/token.ts --scope 'system/*.cruds' 2>/dev/null | tail -1)
BODY=$(node -e 'const p=JSON.parse(require("fs").readFileSync("test/fixtures/fhir-r4-examples/Patient-f001.json"));delete p.id;console.log(JSON.stringify(p))')
ID=$(curl -s -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/fhir+json' -d "$BODY" http://127.0.0.1:$PORT/fhir/Patient | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')
echo "patient $ID"
if [ $MODE = createread ]; then
  echo "$BODY" > $D/body.json
  autocannon -c 32 -d 13 -m POST -H "authorization=Bearer $TOKEN" -H 'content-type=application/fhir+json' -i $D/body.json http://127.0.0.1:$PORT/fhir/Patient 2>&1 | grep -E 'Req/Sec|requests in|2xx'
  ps -o pid,time,rss -p $PID
  sleep ${PAUSE:-0}
  autocannon -c 32 -d $SECS -H "authorization=Bearer $TOKEN" http://127.0.0.1:$PORT/fhir/Patient/$ID 2>&1 | grep -E 'Req/Sec|requests in'
elif [ $MODE = read ]; then
  autocannon -c 32 -d $SECS -H "authorization=Bearer $TOKEN" http://127.0.0.1:$PORT/fhir/Patient/$ID 2>&1 | grep -E 'Req/Sec|requests in'
else
  echo "$BODY" > $D/body.json
  autocannon -c 32 -d $SECS -m POST -H "authorization=Bearer $TOKEN" -H 'content-type=application/fhir+json' -i $D/body.json http://127.0.0.1:$PORT/fhir/Patient 2>&1 | grep -E 'Req/Sec|requests in|2xx'
fi
ps -o pid,time,rss -p $PID
kill -TERM $PID; wait $PID || true
ls /tmp/rprof-out-$PORT
rm -rf $D
