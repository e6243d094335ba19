# Sourced by scripts/setup_vllm_env.sh and scripts/setup_lmeval_env.sh: the part every side
# virtualenv shares. `side_venv_begin VENV STAMP WANT TORCH_SPEC` exits the calling script when
# the stamp says the venv already holds WANT; otherwise it creates the venv, upgrades pip and
# installs torch first from TORCH_SPEC (the CPU wheel on CPU machines), so that nothing later
# resolves an unpinned torch to a multi-GB CUDA build. It leaves `$PIP` set for the caller.
side_venv_begin() {
  local venv="$1" stamp="$2" want="$3" torch_spec="$4"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$venv is up to date ($want)"
    exit 0
  fi
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  PIP="$venv/bin/python -m pip"
  $PIP install --quiet --upgrade pip
  $PIP install --quiet "$torch_spec"
}
