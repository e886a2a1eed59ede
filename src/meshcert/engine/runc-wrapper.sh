#!/bin/sh
# meshcert runc wrapper: registered as dockerd's default runtime where the host's capability
# bounding set (CapBnd) lacks capabilities that `docker run --privileged` asks for (e.g. a
# sandbox without CAP_SYS_RESOURCE). runc fails such containers with "unable to apply caps";
# this wrapper removes every capability absent from CapBnd from the OCI bundle's config.json
# (create/run) or from the --process JSON (exec), then execs the real runc unchanged.
# Installed by `meshcert engine up`; REAL_RUNC is substituted at install time.
# MESHCERT_CAPBND (hex, as in /proc/self/status) overrides the bounding set read from /proc, so
# tests can exercise the filter on hosts whose CapBnd is complete.
set -eu
REAL_RUNC="@REAL_RUNC@"

# Capability names by bit number (linux/capability.h), 0..40.
NAMES="CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT
SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ
PERFMON BPF CHECKPOINT_RESTORE"

absent_caps() {
    bnd=${MESHCERT_CAPBND:-$(awk '/^CapBnd:/ {print $2}' /proc/self/status)}
    bnd=${bnd#0x}
    bit=0
    out=""
    for name in $NAMES; do
        if [ $(( (0x$bnd >> bit) & 1 )) -eq 0 ]; then
            out="$out\"CAP_$name\","
        fi
        bit=$((bit + 1))
    done
    printf '[%s]' "${out%,}"
}

# filter_json FILE JQPATH: drop absent capabilities from the lists under JQPATH ("" = top level).
filter_json() {
    file=$1
    path=$2
    absent=$(absent_caps)
    [ "$absent" = "[]" ] && return 0
    [ -f "$file" ] || return 0
    tmp="$file.meshcert.$$"
    jq --argjson drop "$absent" \
        "if $path.capabilities then $path.capabilities |= with_entries(.value |= ((. // []) - \$drop)) else . end" \
        "$file" >"$tmp" && mv "$tmp" "$file"
}

cmd=""
bundle="."
process=""
prev=""
for arg in "$@"; do
    case "$prev" in
        --bundle|-b) bundle=$arg ;;
        --process|-p) process=$arg ;;
    esac
    case "$arg" in
        --bundle=*) bundle=${arg#--bundle=} ;;
        --process=*) process=${arg#--process=} ;;
    esac
    if [ -z "$cmd" ]; then
        case "$arg" in
            create|run|exec) cmd=$arg ;;
        esac
    fi
    prev=$arg
done

case "$cmd" in
    create|run) filter_json "$bundle/config.json" ".process" ;;
    exec) [ -n "$process" ] && filter_json "$process" "" ;;
esac
exec "$REAL_RUNC" "$@"
