#!/usr/bin/env bash
# Builds the firmware test corpus v1.bin .. v4.bin from the sources in v1/ .. v4/.
# A version directory holds only what changed: BASE names the version it
# builds on, REMOVED lists files of that base it drops, and its own files
# add to or replace the base's.
# Needs Debian's gcc-arm-none-eabi, binutils-arm-none-eabi and libnewlib-arm-none-eabi.
# The ELF and map files go to a temporary directory (or to $ELF_DIR if set) and are not kept here.
set -euo pipefail

export LC_ALL=C
export SOURCE_DATE_EPOCH=0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

CC=arm-none-eabi-gcc
OBJCOPY=arm-none-eabi-objcopy
EXPECTED_GCC="arm-none-eabi-gcc (15:12.2.rel1-1) 12.2.1 20221205"

actual_gcc="$("$CC" --version | head -n1)"
if [[ "$actual_gcc" != "$EXPECTED_GCC" ]]; then
    echo "warning: $actual_gcc differs from $EXPECTED_GCC; the images will not match README.md" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

CFLAGS=(
    -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
    -std=gnu11 -Os -ffunction-sections -fdata-sections
    -Wall -Wextra
    "-ffile-prefix-map=$here/="
    "-ffile-prefix-map=$tmp/src/="
)
LDFLAGS=(
    -nostartfiles --specs=nano.specs --specs=nosys.specs
    -Wl,--gc-sections -Wl,--build-id=none
    -T "$here/cortex-m4.ld"
)

# assemble copies the full source tree of version $1 into directory $2.
assemble() {
    local v=$1 dst=$2
    if [[ -f "$v/BASE" ]]; then
        assemble "$(cat "$v/BASE")" "$dst"
    fi
    if [[ -f "$v/REMOVED" ]]; then
        while read -r f; do rm -f -- "$dst/$f"; done < "$v/REMOVED"
    fi
    cp -- "$v"/*.[ch] "$dst"/
}


for v in v1 v2 v3 v4; do
    src_dir="$tmp/src/$v"
    mkdir -p "$src_dir" "$tmp/$v"
    assemble "$v" "$src_dir"
    mapfile -t srcs < <(cd "$src_dir" && ls -1 -- *.c | sort)
    objs=()
    for src in "${srcs[@]}"; do
        (cd "$src_dir" && "$CC" "${CFLAGS[@]}" -c -o "$tmp/$v/${src%.c}.o" "$src")
        objs+=("$tmp/$v/${src%.c}.o")
    done
    (cd "$src_dir" && "$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" -Wl,-Map="$tmp/$v.map" -o "$tmp/$v.elf" "${objs[@]}")
    "$OBJCOPY" -O binary "$tmp/$v.elf" "$v.bin"
    chmod 644 "$v.bin"
    if [[ -n "${ELF_DIR:-}" ]]; then
        mkdir -p "$ELF_DIR"
        cp "$tmp/$v.elf" "$tmp/$v.map" "$ELF_DIR/"
    fi
    printf '%s.bin %6d bytes  %s\n' "$v" "$(stat -c %s "$v.bin")" "$(sha256sum "$v.bin" | cut -d' ' -f1)"
done
