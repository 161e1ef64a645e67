# Shared by the training scripts (sourced): their one option, --install, and copying a trained model over
# exports/ (the app's default) only when it was given.

# parse_install USAGE ARGS...: sets INSTALL=1 for --install; anything else is a usage error
parse_install() {
  local usage=$1; shift
  INSTALL=0
  for arg in "$@"; do
    case "$arg" in
      --install) INSTALL=1 ;;
      *) echo "usage: $usage [--install]  (unknown argument: $arg)" >&2; exit 2 ;;
    esac
  done
}

# install_or_say MODEL.pkl: with --install, copy its .pkl over exports/ (the training artefact) and its .onnx and
# .json card into the package (fer/models/fer2013_effnet_lite0/, the app's default and the wheel's model; exports/
# links to them); each is copied beside, then renamed, so the app never sees a half-copied model. Without
# --install, say that nothing shipped changed. The suite's figures beside the model come from
# `python -m fer.evaluate --suite --usage PrivateTest --model fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.onnx --beside`.
install_or_say() {
  local model=$1 name=fer2013_effnet_lite0
  local packaged=fer/models/$name
  if [ "$INSTALL" = 1 ]; then
    cp "$model" "exports/.$name.pkl.tmp" && mv "exports/.$name.pkl.tmp" "exports/$name.pkl"
    for suffix in onnx json; do
      cp "${model%.pkl}.$suffix" "$packaged/.$name.$suffix.tmp"
      mv "$packaged/.$name.$suffix.tmp" "$packaged/$name.$suffix"
    done
    rm -f "$packaged/$name.suite.json"  # the old model's figures; measure the new one with fer.evaluate --beside
    echo "installed $model as exports/$name.pkl and $packaged/$name.onnx (the app's default model; its card beside it)"
  else
    echo "trained $model; exports/$name.pkl and $packaged/ are unchanged (run again with --install to replace them)"
  fi
}
