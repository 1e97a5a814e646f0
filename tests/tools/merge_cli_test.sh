#!/usr/bin/env bash
# merge_cli_test.sh FUSEKIT COMPARE GOLDEN_CONFIG_DIR   (cwd holds demo/ from `fusekit demo-checkpoints`)
# Failure cases of `fusekit merge` (non-zero exit, one-line error naming the key/file/tensor, nothing
# in OUT_DIR that looks like a model) and output-format checks (shards + index, config.json patching,
# warnings, --dry-run, --allow-overwrite).
set -uo pipefail
fk=$1; cmp=$2; gdir=$3
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAILED: $1"; }

no_model_in() { # true when $1 has no config.json, *.safetensors or index (hidden temporaries excluded)
  [ ! -e "$1/config.json" ] && [ -z "$(ls "$1" 2>/dev/null | grep -E '\.safetensors$|index\.json$')" ]
}

# expect_fail NAME SUBSTRING -- command...   (OUT_DIR is out_fail)
expect_fail() {
  local name=$1 want=$2; shift 3
  rm -rf out_fail
  "$@" >stdout.txt 2>stderr.txt
  local rc=$?
  local err; err=$(grep -v '^fusekit merge: warning' stderr.txt)
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ]; then bad "$name: error is not one line: $err"; return; fi
  if ! grep -qF -- "$want" <<<"$err"; then bad "$name: error lacks '$want': $err"; return; fi
  if ! no_model_in out_fail; then bad "$name: out_fail looks like a model: $(ls -A out_fail)"; return; fi
  ok "$name ($err)"
}

cfg() { printf '%s\n' "$2" >"$1"; }

# ---- config errors: clear, one line, before anything is read or written ----
cfg unknown_method.yml $'merge_method: tiez\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters: {weight: 1}'
expect_fail "unknown method" "unknown method 'tiez'" -- "$fk" merge unknown_method.yml out_fail
cfg bad_yaml.yml $'merge_method: ties\nmodels: [ {model: demo/math\n'
expect_fail "bad YAML" "invalid YAML" -- "$fk" merge bad_yaml.yml out_fail
cfg unknown_key.yml $'merge_method: linear\nmodels:\n  - model: demo/math\n    parameters: {weight: 1}\nmerge_mehtod: x'
expect_fail "unknown key" "'merge_mehtod': unknown key" -- "$fk" merge unknown_key.yml out_fail
cfg unknown_param.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters: {weight: 1, densty: 0.5}'
expect_fail "unknown parameter" "'models[0].parameters.densty': unknown parameter" -- "$fk" merge unknown_param.yml out_fail
cfg missing_weight.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters: {density: 0.5}'
expect_fail "missing required parameter" "'models[0].parameters.weight': required" -- "$fk" merge missing_weight.yml out_fail
cfg wrong_type.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters: {weight: 1, density: high}'
expect_fail "wrong type" "'models[0].parameters.density': must be a number" -- "$fk" merge wrong_type.yml out_fail
cfg global_in_model.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters: {weight: 1, normalize: false}'
expect_fail "global parameter at model level" "is a global parameter" -- "$fk" merge global_in_model.yml out_fail
cfg no_base.yml $'merge_method: ties\nmodels:\n  - model: demo/math\n    parameters: {weight: 1}'
expect_fail "base required" "requires a base_model" -- "$fk" merge no_base.yml out_fail
cfg filter_gap.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters:\n      weight:\n        - {filter: mlp, value: 1}'
expect_fail "filter without fallback" "no value for model 'demo/math' on tensor" -- "$fk" merge filter_gap.yml out_fail
cfg union.yml $'merge_method: linear\nmodels:\n  - model: demo/math\n    parameters: {weight: 1}\ntokenizer_source: union'
expect_fail "unsupported tokenizer union" "'tokenizer_source'" -- "$fk" merge union.yml out_fail
expect_fail "missing config file" "cannot open the merge configuration" -- "$fk" merge does_not_exist.yml out_fail

# ---- input errors ----
cfg missing_model.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: demo/nothere\n    parameters: {weight: 1}'
expect_fail "missing model folder" "model 'demo/nothere'" -- "$fk" merge missing_model.yml out_fail
"$fk" demo-checkpoints other --models narrow --hidden 16 --intermediate 48 --layers 3 --vocab 40 --heads 4 --kv-heads 2 --allow-overwrite >/dev/null
cfg shapes.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: other/narrow\n    parameters: {weight: 1}'
expect_fail "mismatched shapes" "'other/narrow' has shape [16], model 'demo/base' has [32]" -- "$fk" merge shapes.yml out_fail
mkdir -p broken && cp demo/math/config.json broken/ && head -c 1000 demo/math/model.safetensors >broken/model.safetensors
cfg truncated.yml $'merge_method: ties\nbase_model: demo/base\nmodels:\n  - model: broken\n    parameters: {weight: 1}'
expect_fail "truncated input" "broken/model.safetensors" -- "$fk" merge truncated.yml out_fail
rm -rf badcfg && cp -r demo/base badcfg && python3 - <<'PY'
import json
c = json.load(open("badcfg/config.json")); c["tie_word_embeddings"] = "yes"
json.dump(c, open("badcfg/config.json", "w"))
PY
cfg badcfg.yml $'merge_method: ties\nbase_model: badcfg\nmodels:\n  - model: demo/math\n    parameters: {weight: 1}'
expect_fail "config.json field of the wrong type" "badcfg/config.json: tie_word_embeddings must be true or false" -- "$fk" merge badcfg.yml out_fail
python3 - <<'PY'
import json, os, struct
os.makedirs("fp8", exist_ok=True)
h = json.dumps({"model.embed_tokens.weight": {"dtype": "F8_E4M3", "shape": [40, 32], "data_offsets": [0, 1280]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open("fp8/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + bytes(1280))
PY
cfg fp8.yml $'merge_method: linear\nmodels:\n  - model: fp8\n    parameters: {weight: 1}\n  - model: fp8\n    parameters: {weight: 1}'
expect_fail "F8 rejected" "F8_E4M3: FP8 weights" -- "$fk" merge fp8.yml out_fail
cfg fp8_pass.yml $'merge_method: passthrough\nmodels:\n  - model: fp8'
rm -rf out_fp8
if "$fk" merge fp8_pass.yml out_fp8 -q >/dev/null 2>&1 && cmp -s <(tail -c 1280 fp8/model.safetensors) <(tail -c 1280 out_fp8/model.safetensors); then
  ok "F8 copied verbatim by passthrough"
else bad "F8 passthrough"; fi

# ---- disk full (injected write failure): error, no finished-looking output ----
expect_fail "disk full" "No space left on device" -- "$fk" merge "$gdir/ties_gradient_filter.yml" out_fail --fail-after-bytes 20000 -q
expect_fail "disk full (sharded)" "No space left on device" -- "$fk" merge "$gdir/ties_gradient_filter.yml" out_fail --fail-after-bytes 60000 --out-shard-size 20k -q
if [ -z "$(ls -A out_fail 2>/dev/null)" ]; then ok "no temporaries left after failure"; else bad "leftovers: $(ls -A out_fail)"; fi
# A real limit, not an injected one: with a 16 KiB file-size limit (ulimit -f) the output cannot be
# reserved (posix_fallocate fails with EFBIG) before any tensor is computed.
expect_fail "file-size limit (ulimit -f)" "cannot reserve" -- bash -c "ulimit -f 16; exec \"$fk\" merge \"$gdir/ties_gradient_filter.yml\" out_fail -q"
if [ -z "$(ls -A out_fail 2>/dev/null)" ]; then ok "no temporaries left after the file-size limit"; else bad "leftovers: $(ls -A out_fail)"; fi

# ---- dry run ----
rm -rf out_dry
if "$fk" merge "$gdir/ties_gradient_filter.yml" out_dry --dry-run >plan.txt 2>/dev/null && [ ! -e out_dry ] &&
   grep -q '^plan: merge_method ties, 30 tensors' plan.txt &&
   grep -q 'input demo/chat:model.embed_tokens.weight BF16 \[40, 32\]  {density=0.3 weight=0.3}' plan.txt &&
   grep -q 'model.layers.1.mlp.up_proj.weight \[48, 32\] F32 6144 B  ties  t=0.5' plan.txt &&
   grep -q 'input demo/code:model.layers.1.mlp.up_proj.weight BF16 \[48, 32\]  {density=0.6 weight=0.7}' plan.txt; then
  ok "dry run prints the plan and writes nothing"
else bad "dry run: $(head -5 plan.txt)"; fi

# ---- sharded output + index, config.json patching, same values as the single-file golden ----
rm -rf out_sharded
if "$fk" merge "$gdir/ties_gradient_filter.yml" out_sharded --out-shard-size 20k -q >/dev/null 2>&1 &&
   [ -e out_sharded/model.safetensors.index.json ] && [ ! -e out_sharded/model.safetensors ] &&
   ls out_sharded | grep -q '^model-00001-of-0000[0-9].safetensors$' &&
   "$cmp" out_sharded "$(dirname "$gdir")/../data/io/golden/ties_gradient_filter.safetensors" >/dev/null; then
  ok "sharded output with index equals the golden values"
else bad "sharded output: $(ls out_sharded)"; fi
python3 - out_sharded <<'PY' && ok "config.json: torch_dtype float32, untied (output has lm_head); tokenizer copied" || bad "config.json patching"
import json, sys, os
d = sys.argv[1]
c = json.load(open(os.path.join(d, "config.json")))
assert c["torch_dtype"] == "float32", c["torch_dtype"]
assert c["tie_word_embeddings"] is False
assert os.path.exists(os.path.join(d, "tokenizer.json"))
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
assert "lm_head.weight" in idx["weight_map"] and idx["metadata"]["total_size"] > 0
PY

# ---- overwrite protection ----
expect_fail "existing output" "--allow-overwrite" -- "$fk" merge "$gdir/ties_gradient_filter.yml" out_sharded -q
mv out_sharded out_fail 2>/dev/null; rm -rf out_fail
rm -rf out_ow && "$fk" merge "$gdir/ties_gradient_filter.yml" out_ow -q --out-shard-size 20k >/dev/null 2>&1
if "$fk" merge "$gdir/ties_gradient_filter.yml" out_ow -q --allow-overwrite >/dev/null 2>&1 &&
   [ -e out_ow/model.safetensors ] && [ ! -e out_ow/model.safetensors.index.json ] && ! ls out_ow | grep -q '^model-0'; then
  ok "--allow-overwrite replaces a sharded model by a single file"
else bad "--allow-overwrite: $(ls out_ow)"; fi

# ---- warnings: tied head, vocabulary rows dropped ----
rm -rf out_vocab
"$fk" merge "$gdir/linear_vocab.yml" out_vocab -q >/dev/null 2>warn.txt
if grep -q "model 'demo/wide' has \[48, 32\], cut to \[40, 32\]: 8 vocabulary rows dropped" warn.txt; then
  ok "vocabulary cut warning names the rows dropped"
else bad "vocab warning: $(cat warn.txt)"; fi
rm -rf out_slices
"$fk" merge "$gdir/task_arithmetic_slices.yml" out_slices -q >/dev/null 2>&1
if python3 -c "import json,sys; c=json.load(open('out_slices/config.json')); sys.exit(0 if c['num_hidden_layers']==4 else 1)"; then
  ok "slices: num_hidden_layers rewritten to 4"
else bad "slices config"; fi

# ---- same bytes for any thread count (counter-based RNG, fixed reduction order) ----
cfg dare.yml $'merge_method: dare_ties\nbase_model: demo/base\nmodels:\n  - model: demo/math\n    parameters: {weight: 0.5, density: 0.5}\n  - model: demo/code\n    parameters: {weight: 0.5, density: 0.5}'
rm -rf out_d1 out_d2
"$fk" merge dare.yml out_d1 -q --threads 1 --seed 7 >/dev/null 2>&1
"$fk" merge dare.yml out_d2 -q --threads 2 --seed 7 >/dev/null 2>&1
if cmp -s out_d1/model.safetensors out_d2/model.safetensors; then ok "dare_ties: identical bytes for 1 and 2 threads"; else bad "dare_ties thread determinism"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
