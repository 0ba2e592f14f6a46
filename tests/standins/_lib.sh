# Sourced by every recording stand-in (tests/standins): records this call, then the stand-in
# answers. Installed as /usr/local/sbin/.standin-lib on a test host.
#
# Record format (the file .standin-calls beside the stand-ins), one record per call, every field
# ended by a NUL byte: the field count N (argv[0] and the arguments), the N fields (argv[0] is
# the tool's base name), the byte length L of what the call read on stdin, then those L bytes
# and one more NUL. A record is written with one append, so calls of concurrent commands do not
# interleave.
#
# State the stand-ins keep between calls (installed packages, holds, sysctl values) lives in
# .standin-state/ beside them: one host's state, as a real host keeps it.
STANDIN_DIR=$(dirname "$0")
STANDIN_NAME=$(basename "$0")
STANDIN_STATE="$STANDIN_DIR/.standin-state"
STANDIN_STDIN=$(mktemp)
trap 'rm -f "$STANDIN_STDIN"' EXIT
if [ -t 0 ]; then : > "$STANDIN_STDIN"; else cat > "$STANDIN_STDIN"; fi
mkdir -p "$STANDIN_STATE"
_standin_record=$(mktemp)
{
  printf '%s\0' "$(($# + 1))" "$STANDIN_NAME"
  for _standin_arg in "$@"; do printf '%s\0' "$_standin_arg"; done
  printf '%s\0' "$(wc -c < "$STANDIN_STDIN" | tr -d ' ')"
  cat "$STANDIN_STDIN"
  printf '\0'
} > "$_standin_record"
cat "$_standin_record" >> "$STANDIN_DIR/.standin-calls"
rm -f "$_standin_record"
unset _standin_record _standin_arg

# Fail like the real tool when a test asked for it: .standin-fail/<tool> holds an exit code,
# and optionally .standin-fail/<tool>.match an argument that must be among the call's.
standin_injected_failure() {
  _f="$STANDIN_DIR/.standin-fail/$STANDIN_NAME"
  [ -f "$_f" ] || return 0
  if [ -f "$_f.match" ]; then
    _want=$(cat "$_f.match"); _hit=no
    for _a in "$@"; do [ "$_a" = "$_want" ] && _hit=yes; done
    [ "$_hit" = yes ] || return 0
  fi
  echo "$STANDIN_NAME: injected failure" >&2
  exit "$(cat "$_f")"
}
standin_injected_failure "$@"

# Package state shared by apt-get, apt-mark, dpkg-query, dnf and rpm.
standin_pkg_set() { mkdir -p "$STANDIN_STATE/pkg"; printf '%s\n' "$2" > "$STANDIN_STATE/pkg/$1"; }
standin_pkg_version() { cat "$STANDIN_STATE/pkg/$1" 2>/dev/null; }
standin_hold() { mkdir -p "$STANDIN_STATE/hold"; : > "$STANDIN_STATE/hold/$1"; }
standin_unhold() { rm -f "$STANDIN_STATE/hold/$1"; }
standin_held() { [ -e "$STANDIN_STATE/hold/$1" ]; }
standin_holds() { ls "$STANDIN_STATE/hold" 2>/dev/null; }
# A package file's name and version: kubeadm_1.31.2-1.1_amd64.deb, kubeadm-1.31.2-150500.1.1.x86_64.rpm
standin_deb_file() { _b=$(basename "$1" .deb); echo "${_b%%_*} $(echo "$_b" | cut -d_ -f2)"; }
standin_rpm_file() {
  _b=$(basename "$1" .rpm); _b=${_b%.*}  # drop the architecture
  _rel=${_b##*-}; _b=${_b%-*}; _ver=${_b##*-}; echo "${_b%-*} $_ver-$_rel"
}
