#!/usr/bin/env bash
# Builds the firmware test corpus v1.bin .. v6.bin from the sources in v1/ .. v6/.
# A version directory holds only what changed: BASE names the version it
# builds on, REMOVED lists files of that base it drops, and its own files
# add to or replace the base's.
# Needs Debian's gcc-arm-none-eabi, binutils-arm-none-eabi and libnewlib-arm-none-eabi.
# LDSCRIPT, if a version (or a version it builds on) has one, names the linker
# script; the default is cortex-m4.ld.
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
)
LDLIBS=(-lm)

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

# ldscript prints the linker script of version $1.
ldscript() {
    local v=$1
    if [[ -f "$v/LDSCRIPT" ]]; then
        cat "$v/LDSCRIPT"
    elif [[ -f "$v/BASE" ]]; then
        ldscript "$(cat "$v/BASE")"
    else
        echo cortex-m4.ld
    fi
}


for v in v1 v2 v3 v4 v5 v6; do
    src_dir="$tmp/src/$v"
    mkdir -p "$src_dir" "$tmp/$v"
    assemble "$v" "$src_dir"
    mapfile -t srcs < <(cd "$src_dir" && ls -1 -- *.c | sort)
    objs=()
    for src in "${srcs[@]}"; do
        (cd "$src_dir" && "$CC" "${CFLAGS[@]}" -c -o "$tmp/$v/${src%.c}.o" "$src")
        objs+=("$tmp/$v/${src%.c}.o")
    done
    lds="$here/$(ldscript "$v")"
    (cd "$src_dir" && "$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" -T "$lds" \
        -Wl,-Map="$tmp/$v.map" -o "$tmp/$v.elf" "${objs[@]}" "${LDLIBS[@]}")
    "$OBJCOPY" -O binary "$tmp/$v.elf" "$v.bin"
    chmod 644 "$v.bin"
    if [[ -n "${ELF_DIR:-}" ]]; then
        mkdir -p "$ELF_DIR"
        cp "$tmp/$v.elf" "$tmp/$v.map" "$ELF_DIR/"
    fi
    printf '%s.bin %6d bytes  %s\n' "$v" "$(stat -c %s "$v.bin")" "$(sha256sum "$v.bin" | cut -d' ' -f1)"
done
