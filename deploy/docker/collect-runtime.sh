#!/usr/bin/env bash
# Copies binaries and every shared library they load into an otherwise empty root directory,
# so that the directory alone runs them (the container image's runtime layer; a chroot in the
# tests). Each binary goes to DESTROOT/usr/local/bin/; each library (ldd's list, symlinks
# resolved to the file they name) to DESTROOT/usr/lib/<multiarch>/ under the name the loader
# looks for; the program interpreter to the path written in the binaries (for x86-64
# /lib64/ld-linux-x86-64.so.2). Nothing else: no /etc, /dev, /proc or /tmp (tickwire-server
# needs none of them; see deploy/docker/README.md). Prints what it copied.
#
# Usage: deploy/docker/collect-runtime.sh [--strip] BINARY... DESTROOT
#   --strip  drop the debug sections from the copied binaries (strip --strip-debug); the
#            build's own files keep them for reading core dumps
set -euo pipefail

die() {
  echo "collect-runtime: $*" >&2
  exit 1
}

strip_debug=0
if [[ "${1:-}" == "--strip" ]]; then
  strip_debug=1
  shift
fi
[[ $# -ge 2 ]] || die "usage: collect-runtime.sh [--strip] BINARY... DESTROOT"
dest="${*: -1}"
binaries=("${@:1:$#-1}")
command -v ldd >/dev/null || die "ldd not found (Debian: libc-bin)"
command -v readelf >/dev/null || die "readelf not found (Debian: binutils)"
mkdir -p "${dest}"
chmod 0755 "${dest}"  # a root others (uid 65532) can enter
dest="$(cd "${dest}" && pwd)"

# The loader searches /usr/lib/<multiarch> by default on Debian, with or without merged /usr,
# so every library goes there.
multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
[[ -n "${multiarch}" ]] || multiarch="$(uname -m)-linux-gnu"
libdir="/usr/lib/${multiarch}"

# copy SOURCE TARGET_PATH: the file SOURCE names (symlinks followed), mode kept.
copy() {
  mkdir -p "${dest}$(dirname "$2")"
  cp -L --preserve=mode "$1" "${dest}$2"
  echo "  $2 <- $(readlink -f "$1")"
}

declare -A seen=()
interp=""
for bin in "${binaries[@]}"; do
  [[ -f "${bin}" && -x "${bin}" ]] || die "'${bin}' is not an executable file"
  this_interp="$(readelf -l "${bin}" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')"
  [[ -n "${this_interp}" ]] || die "'${bin}' has no program interpreter (static binaries need nothing)"
  [[ -z "${interp}" || "${interp}" == "${this_interp}" ]] || die "binaries use different loaders"
  interp="${this_interp}"
  copy "${bin}" "/usr/local/bin/$(basename "${bin}")"
  if [[ ${strip_debug} -eq 1 ]]; then strip --strip-debug "${dest}/usr/local/bin/$(basename "${bin}")"; fi
  # ldd lines: "libfoo.so.1 => /path/libfoo.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
  # "linux-vdso.so.1 (0x...)" (in the kernel, nothing to copy). "not found" is an error.
  ldd_out="$(ldd "${bin}")" || die "ldd ${bin} failed"
  if grep -q 'not found' <<<"${ldd_out}"; then
    die "${bin}: libraries not found: $(grep 'not found' <<<"${ldd_out}" | tr -s ' \t' ' ')"
  fi
  while read -r name arrow path _; do
    [[ "${arrow}" == "=>" && "${path}" == /* ]] || continue
    [[ -z "${seen[${name}]:-}" ]] || continue
    seen[${name}]=1
    copy "${path}" "${libdir}/${name}"
  done <<<"${ldd_out}"
done
copy "${interp}" "${interp}"

echo "collect-runtime: ${#binaries[@]} binaries, ${#seen[@]} libraries and ${interp} in ${dest}"
