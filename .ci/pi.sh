#!/usr/bin/env bash
# The Raspberry Pi path of CI (docs/pi.md): cross-builds the aarch64 binary without Docker, runs
# it under qemu-user, builds and inspects the .deb, installs, upgrades, removes and purges it
# with dpkg, and checks the systemd unit. Installs everything it needs itself on a fresh
# Debian 12 machine, as root.
#
# It boots neither a Pi nor systemd: the unit is checked as a file (systemd-analyze), and the
# daemon's side of Type=notify by listening on a notify socket the way systemd does.
#
# Environment:
#   SMSGATE_PI_PROFILE  cargo profile of the cross build (default: release)
#   SMSGATE_PI_ARMV7=0  skip the armv7 (32-bit Raspberry Pi OS) build, on by default
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

TARGET=aarch64-unknown-linux-gnu
PROFILE=${SMSGATE_PI_PROFILE:-release}
# The stripped binary must stay small enough for an SD card and a slow download.
MAX_BINARY_BYTES=$((10 * 1024 * 1024))
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

step() { printf '\n=== pi: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
fail() { printf 'pi: FAILED: %s\n' "$*" >&2; exit 1; }
started=$SECONDS

# ---------------------------------------------------------------------------------------------
step "tools"
packages=()
command -v aarch64-linux-gnu-gcc >/dev/null || packages+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/crt1.o ] || packages+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || command -v qemu-aarch64 >/dev/null \
    || packages+=(qemu-user-static)
command -v systemd-analyze >/dev/null || packages+=(systemd)
command -v adduser >/dev/null || packages+=(adduser)
command -v socat >/dev/null || packages+=(socat) # listens on the daemon's notify socket
ARMV7=${SMSGATE_PI_ARMV7:-1}
if [ "$ARMV7" = 1 ]; then
    command -v arm-linux-gnueabihf-gcc >/dev/null || packages+=(gcc-arm-linux-gnueabihf)
    [ -e /usr/arm-linux-gnueabihf/lib/crt1.o ] || packages+=(libc6-dev-armhf-cross)
fi
if [ ${#packages[@]} -gt 0 ]; then
    echo "installing ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
rustup target add "$TARGET"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
if command -v qemu-aarch64-static >/dev/null; then QEMU_AARCH64=qemu-aarch64-static; else QEMU_AARCH64=qemu-aarch64; fi
aarch64-linux-gnu-gcc --version | head -n 1
"$QEMU_AARCH64" --version | head -n 1
cargo deb --version

# The C code in the build (the bundled SQLite, ring under rustls) needs the cross compiler;
# the linker comes from .cargo/config.toml.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar

# ---------------------------------------------------------------------------------------------
step "configuration files parse"
# Cargo reads Cargo.toml (with [package.metadata.deb]) and .cargo/config.toml on every run;
# Cross.toml only `cross` reads, which CI does not run (it needs Docker): parse it here.
cargo metadata --format-version 1 --no-deps >/dev/null
if command -v python3 >/dev/null && python3 -c 'import tomllib' 2>/dev/null; then
    python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' Cross.toml \
        || fail "Cross.toml is not valid TOML"
fi
for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    grep -q "^\[target\.$target\]" Cross.toml || fail "Cross.toml has no [target.$target]"
    grep -q "^\[target\.$target\]" .cargo/config.toml || fail ".cargo/config.toml has no [target.$target]"
done

# ---------------------------------------------------------------------------------------------
step "cross build $TARGET ($PROFILE profile)"
build_started=$SECONDS
cargo build --locked --profile "$PROFILE" --target "$TARGET" --bin smsgate
build_seconds=$((SECONDS - build_started))
profile_dir=$PROFILE
[ "$PROFILE" = dev ] && profile_dir=debug
BIN=target/$TARGET/$profile_dir/smsgate
[ -x "$BIN" ] || fail "no binary at $BIN"
aarch64-linux-gnu-readelf -h "$BIN" | grep -q 'Machine:.*AArch64' || fail "$BIN is not an AArch64 ELF"
if aarch64-linux-gnu-readelf -S "$BIN" | grep -q '\.debug_info\|\.symtab'; then
    fail "$BIN is not stripped (the release profile sets strip = true)"
fi
binary_bytes=$(stat -c %s "$BIN")
glibc=$(aarch64-linux-gnu-objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n 1)
echo "binary: $BIN, $binary_bytes bytes ($((binary_bytes / 1024)) KiB) stripped, needs glibc ≥ ${glibc#GLIBC_}, built in ${build_seconds}s"
[ "$binary_bytes" -le "$MAX_BINARY_BYTES" ] || fail "binary is $binary_bytes bytes, over the $MAX_BINARY_BYTES-byte limit"

# ---------------------------------------------------------------------------------------------
step "run under $QEMU_AARCH64"
# qemu-user answers the termios2 ioctls with ENOSYS; the daemon then configures the line with
# classic termios (src/modem/port.rs), so this run also proves that fallback.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
QEMU_RUN=("$QEMU_AARCH64" -L /usr/aarch64-linux-gnu)
pi() { "${QEMU_RUN[@]}" "$BIN" "$@"; }
version_line=$(pi --version)
echo "$version_line"
[ "$version_line" = "smsgate $VERSION" ] || fail "--version printed '$version_line', expected 'smsgate $VERSION'"

# A configuration check on the packaged default file with every key uncommented: proves the
# documented keys and defaults are ones smsgate accepts (unknown keys are an error).
sed -E 's/^# ([a-z_]+ = )/\1/; s/^channel_id = ""/channel_id = "ci-channel"/' \
    packaging/smsgate.toml >"$work/all-keys.toml"
# The secrets come from the environment, which wins over the files the packaged config names.
SMSGATE_API_TOKEN=ci-token SMSGATE_ADMIN_PASSWORD=ci-dashboard-password \
    pi check-config -c "$work/all-keys.toml" >/dev/null \
    || fail "packaging/smsgate.toml with every key uncommented is refused (above)"
# …and that it names every key of src/config.rs (and of src/config/pool.rs and calls.rs), section by
# section. A modem's name belongs to [[modems]] entries only ([modem] is always named
# "modem"), so it is looked for in the commented pool example, indented so that it stays
# commented above.
missing=$(awk '
    /^pub struct (Respond|Http|Modem|Store|Sms|Routing|Admin|Calls)Config / {
        section = tolower(substr($3, 1, length($3) - 6)); next }
    section != "" && /^}/ { section = ""; next }
    section != "" && /^    pub [a-z_]+:/ { key = $2; sub(":", "", key); print section "." key }
' src/config.rs src/config/pool.rs src/config/calls.rs | while read -r qualified; do
    section=${qualified%%.*} key=${qualified#*.}
    # admin.password is the resolved secret, never a key of the file.
    [ "$qualified" = admin.password ] && continue
    if [ "$qualified" = modem.name ]; then
        grep -q '^#   name = ' "$work/all-keys.toml" || echo "$qualified"
        continue
    fi
    awk -v s="[$section]" -v k="$key" '
        /^\[/ { inside = ($0 == s) }
        inside && ($0 ~ "^(# )?" k " = ") { found = 1 }
        END { exit !found }' "$work/all-keys.toml" || echo "$qualified"
done)
[ -z "$missing" ] || fail "packaging/smsgate.toml does not document: $missing"
echo "packaged configuration: every key of src/config.rs documented and accepted"

# A PDU as a modem gives it (SMSC in front): SMS-DELIVER from +31624567898, "hellohello" in
# GSM 7-bit, service-centre time 2024-05-17 10:30:00 +02:00 (3GPP TS 23.040 §9.2.2.1).
PDU=07911326040000F0040B911326547698F80000425071010300800AE8329BFD4697D9EC37
if decoded=$(pi pdu decode "$PDU" 2>"$work/pdu.err"); then
    echo "$decoded"
    for expected in '"type":"deliver"' '"sender":"+31624567898"' '"text":"hellohello"' \
        '"encoding":"gsm7"' '"timestamp":"2024-05-17T10:30:00+02:00"'; do
        tr -d ' \n' <<<"$decoded" | grep -qF "$expected" || fail "pdu decode: no $expected in the output"
    done
elif grep -q 'not available in this build' "$work/pdu.err"; then
    echo "SKIPPED: pdu decode is not in this build yet"
else
    cat "$work/pdu.err" >&2
    fail "pdu decode of a known PDU failed"
fi

# The whole gateway against the built-in simulated modem and a local respond.io stand-in: one
# SMS each way. A port of its own, so it cannot meet another program's on 8080.
if pi demo --help 2>/dev/null | grep -q -- '--self-test'; then
    demo_args=(--self-test)
    pi demo --help | grep -q -- '--listen' && demo_args+=(--listen "127.0.0.1:$((20000 + RANDOM % 20000))")
    demo_started=$SECONDS
    timeout 300 "${QEMU_RUN[@]}" "$BIN" demo "${demo_args[@]}" </dev/null \
        || fail "demo --self-test under qemu failed"
    echo "demo --self-test passed under qemu in $((SECONDS - demo_started))s"
else
    echo "SKIPPED: smsgate demo --self-test is not in this build yet"
fi

# The daemon as systemd runs it (Type=notify, WatchdogSec=): the time from exec to a listening
# HTTP port, READY=1 on the notify socket, and a clean stop on SIGTERM within TimeoutStopSec=.
# No modem is attached: the gateway must come up anyway and keep retrying it in the background.
if pi run --help 2>/dev/null | grep -q -- '--config'; then
    port=$((20000 + RANDOM % 20000))
    cat >"$work/run.toml" <<EOF
[respond]
channel_id = "ci-channel"
webhook_url = "http://127.0.0.1:9/"
[http]
listen = "127.0.0.1:$port"
[modem]
port = "$work/no-modem-here"
[store]
path = "$work/smsgate.db"
EOF
    socat -u "UNIX-RECV:$work/notify" "OPEN:$work/notify.log,creat,append" &
    listener=$!
    for _ in $(seq 1 100); do [ -S "$work/notify" ] && break; sleep 0.05; done
    t0=$(date +%s%N)
    # WATCHDOG_PID must be the daemon's own pid: the shell execs into qemu, which runs the
    # binary in the same process.
    SMSGATE_API_TOKEN=ci-token NOTIFY_SOCKET="$work/notify" WATCHDOG_USEC=4000000 \
        bash -c 'WATCHDOG_PID=$$ exec "$@"' _ "${QEMU_RUN[@]}" "$BIN" \
        run -c "$work/run.toml" >"$work/run.log" 2>&1 &
    daemon=$!
    listening="" ready=""
    for _ in $(seq 1 600); do
        if [ -z "$listening" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            listening=$(date +%s%N)
        fi
        if [ -z "$ready" ] && grep -q 'READY=1' "$work/notify.log" 2>/dev/null; then
            ready=$(date +%s%N)
        fi
        [ -n "$listening" ] && [ -n "$ready" ] && break
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$listening" ] || [ -z "$ready" ]; then
        kill "$daemon" "$listener" 2>/dev/null || true
        cat "$work/run.log" >&2
        [ -n "$listening" ] || fail "smsgate run under qemu did not listen on 127.0.0.1:$port within 30 s"
        fail "smsgate run under qemu listened but sent no READY=1 within 30 s"
    fi
    echo "start-up under qemu: HTTP port listening after $(((listening - t0) / 1000000)) ms," \
        "READY=1 after $(((ready - t0) / 1000000)) ms"
    kill -TERM "$daemon"
    stop_started=$SECONDS
    status=0
    wait "$daemon" || status=$?
    kill "$listener" 2>/dev/null || true
    echo "stopped on SIGTERM in $((SECONDS - stop_started))s with status $status; notifications:"
    tr '\n' ' ' <"$work/notify.log"
    echo
    # TimeoutStopSec= in the unit is 30 s; the daemon's own deadline must stay under it.
    [ $((SECONDS - stop_started)) -lt 30 ] || fail "smsgate took longer to stop than TimeoutStopSec"
    [ "$status" = 0 ] || { cat "$work/run.log" >&2; fail "smsgate run exited $status on SIGTERM"; }
else
    echo "SKIPPED: smsgate run is not in this build yet (no start-up time)"
fi

# ---------------------------------------------------------------------------------------------
step "Debian package"
deb_profile=()
[ "$PROFILE" = release ] || deb_profile=(--profile "$PROFILE")
# cargo deb clears target/debian on each run: both packages are kept in $work meanwhile.
DEB=$work/smsgate_${VERSION}_arm64.deb
cargo deb --target "$TARGET" --no-build "${deb_profile[@]}" --output "$DEB" >/dev/null
# An older version of the same package, for the upgrade below.
cargo deb --target "$TARGET" --no-build "${deb_profile[@]}" --deb-version 0.0.0-old \
    --output "$work/old.deb" >/dev/null
echo "$DEB: $(stat -c %s "$DEB") bytes"
dpkg-deb -I "$DEB"
dpkg-deb -c "$DEB" | tee "$work/contents"
# Each entry: mode owner path.
for entry in \
    "-rwxr-xr-x root/root ./usr/bin/smsgate" \
    "-rw-r----- root/root ./etc/smsgate/smsgate.toml" \
    "-rw-r--r-- root/root ./usr/lib/systemd/system/smsgate.service" \
    "-rw-r--r-- root/root ./usr/share/doc/smsgate/pi.md" \
    "-rw-r--r-- root/root ./usr/share/doc/smsgate/dashboard.png" \
    "-rw-r--r-- root/root ./usr/share/doc/smsgate/copyright"; do
    read -r mode owner path <<<"$entry"
    awk -v m="$mode" -v p="$path" '$1 == m && $2 == "0/0" && $6 == p { found = 1 } END { exit !found }' \
        "$work/contents" || fail "the package lacks $path with mode $mode ($owner)"
done
dpkg-deb -f "$DEB" Package | grep -qx smsgate || fail "package name"
dpkg-deb -f "$DEB" Architecture | grep -qx arm64 || fail "architecture is not arm64"
dpkg-deb -f "$DEB" Depends | grep -q 'adduser' || fail "Depends lacks adduser (the postinst needs it)"
[ "$(dpkg-deb -I "$DEB" conffiles)" = /etc/smsgate/smsgate.toml ] || fail "conffiles is not exactly /etc/smsgate/smsgate.toml"
dpkg-deb -I "$DEB" postinst | grep -q 'adduser --system' || fail "the postinst does not create the smsgate user"
dpkg-deb -I "$DEB" postinst | grep -q 'deb-systemd-helper' || fail "the postinst lacks the unit's hooks"
for script in postinst prerm postrm; do
    dpkg-deb -I "$DEB" "$script" | grep -q '#DEBHELPER#' && fail "$script still has the #DEBHELPER# token"
    dpkg-deb -I "$DEB" "$script" | grep -Eq 'rm -[a-z]*r[a-z]* .*/var/lib/smsgate' \
        && fail "$script deletes the database directory"
done

# Install, upgrade, remove and purge with dpkg on this machine, as root: the data must survive.
# The arm64 package goes onto a machine of another architecture, so dpkg is told to ignore the
# architecture and libc6:arm64; nothing from the package is executed but its scripts.
if [ "$(id -u)" != 0 ]; then
    echo "SKIPPED: install cycle (needs root)"
elif dpkg-query -W smsgate >/dev/null 2>&1 || getent passwd smsgate >/dev/null \
    || [ -e /var/lib/smsgate ] || [ -e /etc/smsgate ]; then
    echo "SKIPPED: install cycle (this machine already has an smsgate installation)"
else
    force=(--force-architecture --force-depends --force-confold)
    cleanup_install() {
        dpkg --purge smsgate >/dev/null 2>&1 || true
        rm -rf /var/lib/smsgate /etc/smsgate
        rm -rf "$work"
    }
    trap cleanup_install EXIT
    dpkg -i "${force[@]}" "$work/old.deb" >/dev/null
    id -nG smsgate | tr ' ' '\n' | grep -qx dialout || fail "user smsgate is not in group dialout"
    [ "$(getent passwd smsgate | cut -d: -f7)" = /usr/sbin/nologin ] || fail "user smsgate can log in"
    [ "$(stat -c '%U:%G %a' /var/lib/smsgate)" = "smsgate:smsgate 750" ] \
        || fail "/var/lib/smsgate is $(stat -c '%U:%G %a' /var/lib/smsgate)"
    [ "$(stat -c '%U:%G %a' /etc/smsgate/smsgate.toml)" = "root:smsgate 640" ] \
        || fail "/etc/smsgate/smsgate.toml is $(stat -c '%U:%G %a' /etc/smsgate/smsgate.toml)"
    # What an owner has by now: a database and a configuration with the channel filled in.
    echo "messages" >/var/lib/smsgate/smsgate.db
    sed -i 's/^channel_id = ""/channel_id = "kept-channel"/' /etc/smsgate/smsgate.toml
    dpkg -i "${force[@]}" "$DEB" >/dev/null # the upgrade
    [ "$(dpkg-query -W -f '${Version}' smsgate)" = "$VERSION" ] || fail "the upgrade did not install $VERSION"
    grep -q '^channel_id = "kept-channel"' /etc/smsgate/smsgate.toml || fail "the upgrade lost the configuration"
    [ "$(cat /var/lib/smsgate/smsgate.db)" = messages ] || fail "the upgrade lost the database"
    [ "$(stat -c '%G %a' /etc/smsgate/smsgate.toml)" = "smsgate 640" ] || fail "the upgrade changed the configuration's mode"
    dpkg -r smsgate >/dev/null
    [ ! -e /usr/bin/smsgate ] || fail "remove left /usr/bin/smsgate"
    grep -q '^channel_id = "kept-channel"' /etc/smsgate/smsgate.toml || fail "remove lost the configuration"
    [ "$(cat /var/lib/smsgate/smsgate.db)" = messages ] || fail "remove lost the database"
    getent passwd smsgate >/dev/null || fail "remove deleted the smsgate user"
    dpkg --purge smsgate >/dev/null
    ! getent passwd smsgate >/dev/null || fail "purge left the smsgate user"
    [ "$(cat /var/lib/smsgate/smsgate.db)" = messages ] || fail "purge deleted the database"
    echo "install → upgrade → remove → purge: user, modes, configuration and database as expected"
fi

# ---------------------------------------------------------------------------------------------
step "systemd unit"
# verify needs the unit's ExecStart binary in place: check it inside the package's own tree.
root="$work/root"
mkdir -p "$root"
dpkg-deb -x "$DEB" "$root"
# verify exits non-zero on warnings too (an unknown key, a bad value, a missing binary).
if ! systemd-analyze verify --man=no --generators=no --recursive-errors=no \
    --root="$root" /usr/lib/systemd/system/smsgate.service >"$work/verify.log" 2>&1; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify found problems in smsgate.service"
fi
cat "$work/verify.log"
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=true --root="$root" /usr/lib/systemd/system/smsgate.service \
    >"$work/security.log" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for smsgate.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' "$work/security.log")
[ -n "$exposure" ] || { cat "$work/security.log" >&2; fail "no exposure level from systemd-analyze security"; }
grep '✗' "$work/security.log" || true
echo "systemd-analyze security exposure: $exposure"
awk -v e="${exposure%% *}" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure is over 2.0"

# ---------------------------------------------------------------------------------------------
if [ "$ARMV7" = 1 ]; then
    step "cross build armv7-unknown-linux-gnueabihf ($PROFILE profile)"
    rustup target add armv7-unknown-linux-gnueabihf
    armv7_started=$SECONDS
    cargo build --locked --profile "$PROFILE" --target armv7-unknown-linux-gnueabihf --bin smsgate
    ARMV7_BIN=target/armv7-unknown-linux-gnueabihf/$profile_dir/smsgate
    qemu_arm=qemu-arm-static
    command -v "$qemu_arm" >/dev/null || qemu_arm=qemu-arm
    armv7_version=$("$qemu_arm" -L /usr/arm-linux-gnueabihf "$ARMV7_BIN" --version)
    [ "$armv7_version" = "smsgate $VERSION" ] || fail "armv7 --version printed '$armv7_version'"
    # The 32-bit build end to end as well (its own time_t, pointer size and atomics).
    if "$qemu_arm" -L /usr/arm-linux-gnueabihf "$ARMV7_BIN" demo --help | grep -q -- '--self-test'; then
        timeout 300 "$qemu_arm" -L /usr/arm-linux-gnueabihf \
            "$ARMV7_BIN" demo --self-test --listen "127.0.0.1:$((20000 + RANDOM % 20000))" </dev/null \
            || fail "armv7 demo --self-test under qemu failed"
    fi
    ARMHF_DEB=$work/smsgate_${VERSION}_armhf.deb
    cargo deb --target armv7-unknown-linux-gnueabihf --no-build "${deb_profile[@]}" \
        --output "$ARMHF_DEB" >/dev/null
    dpkg-deb -f "$ARMHF_DEB" Architecture | grep -qx armhf || fail "the armv7 package is not armhf"
    echo "armv7: $(stat -c %s "$ARMV7_BIN") bytes, runs under $qemu_arm, packaged as" \
        "$(basename "$ARMHF_DEB") in $((SECONDS - armv7_started))s"
fi

mkdir -p target/debian
cp "$work"/smsgate_*.deb target/debian/
echo "packages: $(cd target/debian && echo smsgate_*.deb)"

step "done in $((SECONDS - started))s (aarch64 build ${build_seconds}s)"
