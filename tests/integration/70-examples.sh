#!/bin/bash
# SPDX-License-Identifier: MIT
# The example training program against a real daemon: its backprop passes
# a gradient check, a healthy run arrives whole (every step's loss and
# every layer's series), an injected NaN and an explosion are stored as
# non-finite, clipping is logged, a vanishing stack shows as such, it
# trains without a daemon, and the demo script runs.
. "$(dirname "$0")/../lib/lib.sh"
MLP=$GW_BUILD/examples/mlp
if [ ! -x "$MLP" ]; then
	nok "$MLP is built"
	done_testing
fi

# points RUN SERIES [QUERY]: the series' points answer (every point).
points() { body_of "$(req GET "/api/v1/runs/$1/points?series=$2&max=100000${3:-}")"; }

out=$("$MLP" --gradcheck)
is "$?" 0 "mlp --gradcheck passes"
is "$(printf '%s\n' "$out" | grep -c ': ok$')" 3 "for relu, tanh and sigmoid"

start_daemon || exit 1
export GRADWATCH_URL=$URL

# A healthy run: every step's loss, every tensor's gradient norm.
"$MLP" -q --run ex-ok --steps 120 --eval-every 50
is "$?" 0 "a healthy run exits 0"
b=$(body_of "$(req GET /api/v1/runs/ex-ok)")
is "$(jqr "$b" '[.status, .project, .first_step, .last_step, .dropped]')" \
	'["finished","examples",0,119,0]' "the run is finished, steps 0 to 119, nothing dropped"
is "$(jqr "$b" '[.config.lr, .config.depth, .config.act]')" '[0.1,4,"relu"]' "the run carries its config"
is "$(jqr "$b" '[.series[] | select(.kind == "layer_grad") | .name] | sort')" \
	'["fc0.bias","fc0.weight","fc1.bias","fc1.weight","fc2.bias","fc2.weight","fc3.bias","fc3.weight"]' \
	"every weight and bias tensor is a series"
is "$(jqr "$b" '[.series[] | select(.kind == "layer_grad" or .kind == "loss" or .kind == "grad_norm" or .kind == "lr") | .points] | unique')" \
	'[120]' "loss, grad_norm, lr and each layer's gradient norm have 120 points"
is "$(jqr "$b" '[.series[] | select(.kind == "layer_weight") | .points] | unique')" '[12]' \
	"weight norms every 10 steps"
is "$(jqr "$b" '[.series[] | select(.kind == "metric") | [.name, .points]] | sort')" \
	'[["accuracy",120],["val_accuracy",3]]' "accuracy every step, held-out accuracy every 50"
is "$(jqr "$b" '.series[] | select(.kind == "layer_grad" and .name == "fc0.weight") | [.shape, .depth]')" \
	'[[64,20],0]' "a tensor carries its shape and depth"
is "$(jqr "$b" '.series[] | select(.kind == "layer_grad" and .name == "fc3.bias") | [.shape, .depth]')" \
	'[[5],3]' "a bias too"
b=$(points ex-ok loss)
is "$(jqr "$b" '.series.loss.steps == [range(120)]')" true "the loss arrived for steps 0..119 in order"
is "$(jqr "$b" '.series.loss.values | map(select(type == "number" and . > 0)) | length')" 120 \
	"as positive numbers"
is "$(jqr "$b" '.series.loss.values | (.[:10] | add / 10) > (.[-10:] | add / 10)')" true \
	"and it went down"
b=$(points ex-ok fc0.weight,fc3.bias)
is "$(jqr "$b" '[.series[] | .steps == [range(120)]] | unique')" '[true]' \
	"layer series arrived for every step"

# One NaN in one input batch: the stored loss at that step is NaN.
"$MLP" -q --run ex-nan --steps 60 --nan-at 40
is "$?" 0 "a NaN-injected run exits 0"
b=$(points ex-nan loss '&from=39&to=40')
is "$(jqr "$b" '.series.loss.values | [(.[0] | type), .[1]]')" '["number","NaN"]' \
	"the loss is finite at step 39 and stored as \"NaN\" at step 40"
b=$(points ex-nan grad_norm '&from=40&to=40')
is "$(jqr "$b" '.series.grad_norm.values')" '["NaN"]' "so is the gradient norm"

# A learning rate far too high: the gradient norm grows, then is non-finite.
"$MLP" -q --run ex-boom --lr 2 --steps 150
is "$?" 0 "an exploding run exits 0"
b=$(points ex-boom grad_norm)
is "$(jqr "$b" '.series.grad_norm.steps | length')" 150 "all 150 gradient norms arrived"
first=$(jqr "$b" '.series.grad_norm.values | map(type == "string") | index(true)')
[ "$first" != null ] && [ "$first" -lt 150 ] &&
	ok "the stored gradient norm turns non-finite (step $first)" ||
	nok "the stored gradient norm turns non-finite" "got: $(jqr "$b" '.series.grad_norm.values[-1]')"
is "$(jqr "$b" ".series.grad_norm.values | (.[:20] | sort | .[10]) as \$base
	| [.[$first - 5:$first][] | select(type == \"number\" and . > 10 * \$base)] | length")" 5 \
	"the five steps before it were over 10x the early median"
is "$(jqr "$(points ex-boom loss)" '.series.loss.values[-1]')" NaN "the loss ends NaN"

# A clip threshold far too low: every step clipped, and logged so.
"$MLP" -q --run ex-clip --clip 1e-3 --steps 50
is "$?" 0 "a clip-too-low run exits 0"
b=$(points ex-clip clip_pre_norm,clip_max_norm)
is "$(jqr "$b" '[.series.clip_pre_norm.steps, .series.clip_max_norm.steps] | map(length)')" \
	'[50,50]' "every step has its clipping"
is "$(jqr "$b" '[(.series.clip_max_norm.values | unique), ([.series.clip_pre_norm.values[] | select(. > 0.001)] | length)]')" \
	'[[0.001],50]' "max_norm 1e-3, and every pre-clip norm above it"

# A deep sigmoid stack: the first layer's gradients vanish.
"$MLP" -q --run ex-vanish --act sigmoid --depth 12 --init-scale small --steps 30
is "$?" 0 "a vanishing run exits 0"
b=$(body_of "$(req GET /api/v1/runs/ex-vanish)")
ratio=$(jqr "$b" '[.series[] | select(.kind == "layer_grad")] |
	(map(select(.name == "fc0.weight"))[0].last_value) / (map(select(.name == "fc11.weight"))[0].last_value)')
is "$(jqr "$ratio" '. < 1e-6')" true "fc0's gradient norm is under 1e-6 of fc11's ($ratio)"

# No daemon: training runs the same, and the exit waits a bounded time.
dead=http://127.0.0.1:$(free_port)
t0=$(date +%s%N)
out=$("$MLP" --url "$dead" --run ex-nodaemon --steps 50 --close-ms 500 2>"$TMP/nod.err")
is "$?" 0 "with no daemon, mlp still exits 0"
ms=$((($(date +%s%N) - t0) / 1000000))
like "$out" "done: 50 steps" "and trains every step"
if [ "$ms" -lt 1500 ]; then ok "in ${ms} ms with a 500 ms close timeout"; else nok "took ${ms} ms"; fi
like "$(cat "$TMP/nod.err")" "not everything reached gradwatchd" "and says that its data did not arrive"

# --stop-on-critical, against a stand-in daemon that calls every run
# critical (the real detector decides that; here only mlp's side is tested).
fake_port=$(free_port)
/usr/bin/python3 - "$fake_port" "$TMP/finish.json" <<'PY' 2>"$TMP/fake.log" &
import http.server, json, sys
ALERT = {"id": 1, "run": "ex-stop", "kind": "grad_explosion", "severity": "critical",
         "state": "firing", "series": "fc0.weight", "onset_step": 3, "fire_step": 5,
         "message": "gradient norm 1000x its baseline"}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/finish"):
            open(sys.argv[2], "w").write(body.decode())
            out = {"run": "ex-stop", "status": json.loads(body)["status"]}
        else:
            out = {"accepted": 1, "health": "critical", "alerts": [ALERT]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$fake_port/" && break
	sleep 0.05
done
out=$("$MLP" --url "http://127.0.0.1:$fake_port" --run ex-stop --steps 3000 --step-ms 1 \
	--print-every 100000 --stop-on-critical 2>&1)
is "$?" 2 "--stop-on-critical stops with exit status 2 once the run is critical"
like "$out" "gradwatch says the run is critical (1 alert firing)" "it says why"
like "$out" "critical grad_explosion on fc0.weight since step 3: gradient norm 1000x its baseline" \
	"naming the alert from gw_alerts()"
is "$(jq -r .status "$TMP/finish.json" 2>/dev/null)" failed "and marks the run failed"
kill "$fake_pid" 2>/dev/null

# The demo: against this daemon, then starting and stopping its own.
DEMO_DIR=$TMP/demo "$GW_TOP/examples/demo.sh" --once --no-build --steps 40 --step-ms 0 >"$TMP/demo.out" 2>&1
is "$?" 0 "demo.sh --once runs against a daemon that answers"
is "$(jqr "$(body_of "$(req GET '/api/v1/runs?project=demo')")" '.runs | length')" 5 "its five runs arrived"
like "$(cat "$TMP/demo.out")" "using the gradwatchd answering at $URL" "it used the running daemon"
port2=$(free_port_pair)
GRADWATCH_URL=http://127.0.0.1:$port2 DEMO_DIR=$TMP/demo2 \
	"$GW_TOP/examples/demo.sh" --once --no-build --steps 20 --step-ms 0 >"$TMP/demo2.out" 2>&1
rc=$?
is "$rc" 0 "demo.sh --once starts its own daemon when none answers"
[ "$rc" = 0 ] || cat "$TMP/demo2.out" "$TMP/demo2/gradwatchd.log" 2>/dev/null | tail -n 40 | sed 's/^/#   /' 
like "$(cat "$TMP/demo2.out")" "stopped gradwatchd" "and stops it"
[ -s "$TMP/demo2/gradwatch.db" ] && ok "with its database in DEMO_DIR" || nok "no database in DEMO_DIR"
curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port2/healthz" 2>/dev/null &&
	nok "its daemon is gone" || ok "its daemon is gone"
done_testing
