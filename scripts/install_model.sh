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

# install_or_say MODEL.pkl: with --install, copy its .pkl, .onnx and .json card over exports/ (copied beside,
# then renamed: the app never sees a half-copied model); without, say that exports/ is unchanged
install_or_say() {
  local model=$1 shipped=exports/fer2013_effnet_lite0
  if [ "$INSTALL" = 1 ]; then
    for suffix in pkl onnx json; do
      cp "${model%.pkl}.$suffix" "exports/.fer2013_effnet_lite0.$suffix.tmp"
      mv "exports/.fer2013_effnet_lite0.$suffix.tmp" "$shipped.$suffix"
    done
    echo "installed $model as $shipped.pkl (the app's default model; its .onnx and card beside it)"
  else
    echo "trained $model; $shipped.pkl is unchanged (run again with --install to replace it)"
  fi
}
