#!/bin/bash
# Installs EdgePulse into a scratch root (mode "install": cmake --install; mode "deb":
# scripts/build-deb from this build tree, lintian clean, then dpkg -i into an overlay of
# this machine's root that excludes /usr/share/doc like a minimal image) and checks what
# an operator relies on:
#   - every unit in systemd/ is installed and passes `systemd-analyze verify`, with its
#     ExecStart paths rewritten into the scratch root (verify checks they are executable)
#   - every service is hardened the same way and runs as the edgepulse user
#   - every timer has its service; every man: reference has an installed man page
#   - the cron lines run the same jobs as the timers
#   - edgepulse-job refuses a second concurrent run with exit 75, and misuse with 64
#   - (deb) lintian reports no error and no warning; control data, stripped binaries,
#     compressed man pages; configuration succeeds without /usr/share/doc (user,
#     directories, env file 0640 root:edgepulse kept on reinstall); units registered
#     through deb-systemd-helper, never systemctl; purge removes the configuration
# Fails on the first problem, naming it.
set -euo pipefail
mode=$1 build=$2 src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/ep-units.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
fail() { echo "units_test: $*" >&2; exit 1; }

case "$mode" in
  install)
    DESTDIR=$root cmake --install "$build" --prefix /usr >"$work/install.log" 2>&1 \
      || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
    ;;
  deb)
    # scripts/build-deb packages this build tree (lintian must report no error and no
    # warning), then the package is installed into a throwaway copy of this machine's
    # root (an overlay in a private mount namespace) set up like a minimal image: dpkg
    # excludes /usr/share/doc/*. Configuration must succeed there.
    [ "$(id -u)" = 0 ] || fail "the package test installs into a private overlay root: run as root"
    if [ -z "${EP_UNITS_NS:-}" ]; then
      trap - EXIT; rm -rf "$work"
      exec unshare --mount --propagation private env EP_UNITS_NS=1 bash "$0" "$@"
    fi
    "$src/scripts/build-deb" --prebuilt "$build" --out "$work/pkg" >"$work/build-deb.log" 2>&1 \
      || { cat "$work/build-deb.log" >&2; fail "scripts/build-deb failed"; }
    grep -q "^W: \|^E: " "$work/pkg/lintian.log" && fail "lintian: $(cat "$work/pkg/lintian.log")"
    version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
    cmake_version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
    [ "$version" = "$cmake_version" ] || fail "debian/changelog is at $version, CMakeLists.txt at $cmake_version"
    deb=$(ls "$work"/pkg/edgepulse_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || fail "build-deb produced no edgepulse_*.deb"
    dpkg-deb --info "$deb" >"$work/info"
    grep -q "^ Package: edgepulse$" "$work/info" || fail "control: Package is not edgepulse"
    grep -q "^ Depends:.*adduser" "$work/info" || fail "control: Depends lacks adduser"
    grep -q "^ Depends:.*libpq5" "$work/info" || fail "control: Depends lacks libpq5 (shlibdeps)"
    dpkg-deb -c "$deb" >"$work/contents"
    grep -q " \./usr/share/man/man1/ep-ingest\.1\.gz$" "$work/contents" || fail "man pages not compressed"

    # The minimal-image-like root: everything of this machine's, no docs, and dpkg
    # told to leave /usr/share/doc out, as slim images do.
    # Only this namespace sees the mounts; still, unmount before removing anything.
    trap 'umount -R "$root" 2>/dev/null; umount "$work/ovl" 2>/dev/null; rm -rf --one-file-system "$work"' EXIT
    mkdir -p "$work/ovl" "$root"
    mount -t tmpfs tmpfs "$work/ovl"
    mkdir "$work/ovl/upper" "$work/ovl/work"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$work/ovl/upper,workdir=$work/ovl/work" "$root"
    mount -t proc proc "$root/proc"
    mount -t tmpfs tmpfs "$root/dev"
    for n in null zero random urandom; do touch "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"; done
    mount -t tmpfs tmpfs "$root/run"   # no /run/systemd/system: systemd is not running there
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/usr/share/doc"   # empty, as on a minimal image
    printf 'path-exclude=/usr/share/doc/*\n' >"$root/etc/dpkg/dpkg.cfg.d/01-nodoc"
    chroot "$root" dpkg --purge edgepulse >/dev/null 2>&1 || true
    cp "$deb" "$root/tmp/"
    chroot "$root" dpkg -i "/tmp/$(basename "$deb")" >"$work/dpkg.log" 2>&1 \
      || { cat "$work/dpkg.log" >&2; fail "dpkg -i failed on a root without /usr/share/doc"; }
    chroot "$root" dpkg-query -W -f='${Status}' edgepulse | grep -qx "install ok installed" \
      || fail "edgepulse is not configured: $(chroot "$root" dpkg-query -W -f='${Status}' edgepulse)"
    [ ! -e "$root/usr/share/doc/edgepulse" ] || fail "dpkg did not exclude /usr/share/doc"
    for b in "$root"/usr/bin/ep-*; do
      readelf -S "$b" | grep -q '\.symtab' && fail "$(basename "$b") is not stripped"
    done
    chroot "$root" getent passwd edgepulse >/dev/null || fail "postinst did not create the edgepulse user"
    # (names resolved inside the root: the user exists only there)
    envmode=$(chroot "$root" stat -c '%a %U %G' /etc/edgepulse/edgepulse.env)
    [ "$envmode" = "640 root edgepulse" ] \
      || fail "/etc/edgepulse/edgepulse.env: $envmode, want 640 root edgepulse"
    for d in archive models locks; do
      [ "$(chroot "$root" stat -c '%U' "/var/lib/edgepulse/$d")" = edgepulse ] || fail "/var/lib/edgepulse/$d is not the edgepulse user's"
    done
    grep -q "deb-systemd-helper" "$root/var/lib/dpkg/info/edgepulse.postinst" \
      || fail "postinst does not register the units with deb-systemd-helper"
    grep -q "systemctl stop\|systemctl start\|systemctl enable" "$root"/var/lib/dpkg/info/edgepulse.p* \
      && fail "a maintainer script calls systemctl itself"
    # Configured again (dpkg-reconfigure, an upgrade): the edited env file stays.
    echo "SCORE_INTERVAL_SEC=300" >>"$root/etc/edgepulse/edgepulse.env"
    chroot "$root" dpkg -i "/tmp/$(basename "$deb")" >"$work/dpkg.log" 2>&1 \
      || { cat "$work/dpkg.log" >&2; fail "reinstalling the package failed"; }
    grep -qx "SCORE_INTERVAL_SEC=300" "$root/etc/edgepulse/edgepulse.env" || fail "reinstall overwrote the env file"
    unitroot=$root/lib/systemd/system
    ;;
  script)
    # scripts/install staged into a scratch root, with a non-default score interval.
    mkdir -p "$root/etc/edgepulse"
    sed 's/^SCORE_INTERVAL_SEC=.*/SCORE_INTERVAL_SEC=300/' "$src/examples/edgepulse.env.example" \
      >"$root/etc/edgepulse/edgepulse.env"
    "$src/scripts/install" --build-dir "$build" --destdir "$root" >"$work/install.log" 2>&1 \
      || { cat "$work/install.log" >&2; fail "scripts/install failed"; }
    for d in var/lib/edgepulse/archive var/lib/edgepulse/models var/lib/edgepulse/locks; do
      [ -d "$root/$d" ] || fail "scripts/install did not create /$d"
    done
    grep -q '^SCORE_INTERVAL_SEC=300$' "$root/etc/edgepulse/edgepulse.env" \
      || fail "scripts/install overwrote an existing env file"
    grep -qx 'OnUnitActiveSec=300s' "$root/etc/systemd/system/ep-score.timer.d/interval.conf" \
      || fail "scripts/install did not write the score interval drop-in"
    # Idempotent: a second run succeeds and changes nothing it should keep.
    "$src/scripts/install" --build-dir "$build" --destdir "$root" >/dev/null 2>&1 \
      || fail "scripts/install is not idempotent"
    ;;
  *) fail "usage: units_test.sh install|deb|script BUILD_DIR SOURCE_DIR" ;;
esac

unitdir=${unitroot:-$root/usr/lib/systemd/system}
job=$root/usr/libexec/edgepulse/edgepulse-job
[ -x "$job" ] || fail "edgepulse-job not installed at /usr/libexec/edgepulse"
[ -f "$root/usr/share/edgepulse/edgepulse.env.example" ] || fail "env template not installed"
if [ "$mode" != deb ]; then   # the package's docs went the way of a minimal image
  [ -f "$root/usr/share/doc/edgepulse/examples/edgepulse.env.example" ] || fail "env example not installed"
  [ -f "$root/usr/share/doc/edgepulse/examples/cron/edgepulse.cron" ] || fail "cron example not installed"
fi

# Every unit of the source tree is installed, and there are the ones the docs promise.
for u in ep-ingest.service ep-load.service ep-api.service ep-score.service ep-score.timer ep-train.service \
         ep-train.timer ep-alert.service ep-alert.timer ep-retention.service ep-retention.timer; do
  [ -f "$src/systemd/$u" ] || fail "systemd/$u missing from the source tree"
done
for f in "$src"/systemd/*.service "$src"/systemd/*.timer; do
  [ -f "$unitdir/$(basename "$f")" ] || fail "$(basename "$f") not installed in /usr/lib/systemd/system"
done

# Rewrite absolute program paths into the scratch root, then verify every unit at once
# (timers are verified together with the services they trigger).
mkdir -p "$work/units"
for f in "$unitdir"/ep-*; do
  sed -e "s#=/usr/bin/#=$root/usr/bin/#g" -e "s#=/usr/libexec/#=$root/usr/libexec/#g" \
    "$f" >"$work/units/$(basename "$f")"
done
grep -h '^ExecStart=' "$work"/units/*.service | sed 's/^ExecStart=//; s/ .*//' | sort -u >"$work/execs"
[ -s "$work/execs" ] || fail "no ExecStart lines"
while read -r exe; do
  case "$exe" in "$root"/*) ;; *) fail "ExecStart $exe is not an installed EdgePulse program";; esac
done <"$work/execs"
if ! (cd "$work/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./*.service ./*.timer) \
     >"$work/verify.log" 2>&1; then
  cat "$work/verify.log" >&2
  fail "systemd-analyze verify failed"
fi
# verify can succeed with warnings (unknown keys, bad values it ignores): none allowed.
if [ -s "$work/verify.log" ]; then
  cat "$work/verify.log" >&2
  fail "systemd-analyze verify printed warnings"
fi

# Hardening and identity: the same baseline on every service.
for f in "$unitdir"/ep-*.service; do
  n=$(basename "$f")
  for want in "User=edgepulse" "Group=edgepulse" "EnvironmentFile=/etc/edgepulse/edgepulse.env" \
              "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
              "PrivateDevices=yes" "CapabilityBoundingSet=" "SystemCallFilter=@system-service" \
              "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "MemoryDenyWriteExecute=yes"; do
    grep -qx "$want" "$f" || fail "$n: missing '$want'"
  done
  # Only the state directory may be writable.
  grep '^ReadWritePaths=' "$f" | grep -qv '^ReadWritePaths=/var/lib/edgepulse$' \
    && fail "$n: ReadWritePaths beyond /var/lib/edgepulse"
  # Documentation= man pages are installed.
  for m in $(grep '^Documentation=' "$f" | sed 's/^Documentation=//'); do
    case "$m" in
      man:*) page=${m#man:}; name=${page%(*}; sec=${page#*(}; sec=${sec%)}
             [ -f "$root/usr/share/man/man$sec/$name.$sec" ] || [ -f "$root/usr/share/man/man$sec/$name.$sec.gz" ] \
               || fail "$n: Documentation=$m but no installed man page $name.$sec" ;;
    esac
  done
done
grep -qx "Restart=on-failure" "$unitdir/ep-ingest.service" || fail "ep-ingest.service: no Restart=on-failure"
grep -qx "KillMode=mixed" "$unitdir/ep-ingest.service" || fail "ep-ingest.service: SIGTERM must reach only the pipeline shell"
grep -qx "Restart=on-failure" "$unitdir/ep-api.service" || fail "ep-api.service: no Restart=on-failure"

# Timers trigger their own oneshot service; cron runs the same jobs.
cron=$src/examples/cron/edgepulse.cron
for t in "$unitdir"/ep-*.timer; do
  n=$(basename "$t" .timer)
  [ -f "$unitdir/$n.service" ] || fail "$n.timer has no $n.service"
  grep -qx "Unit=$n.service" "$t" || fail "$n.timer: Unit= is not $n.service"
  grep -qx "Type=oneshot" "$unitdir/$n.service" || fail "$n.service: timer jobs must be Type=oneshot"
  jobname=$(grep '^ExecStart=' "$unitdir/$n.service" | awk '{print $2}')
  grep -v '^#' "$cron" | grep -q "\$J $jobname " || fail "cron has no line for job '$jobname' ($n.timer)"
done
grep -qx "OnUnitActiveSec=600s" "$unitdir/ep-score.timer" || fail "ep-score.timer: interval is not SCORE_INTERVAL_SEC's default (600s)"
grep -q '^\*/10 ' "$cron" || fail "cron: score does not run every 10 minutes (SCORE_INTERVAL_SEC default)"

# The job runner: misuse is 64, a second concurrent run of a job is 75.
set +e
env -u DATABASE_URL "$job" score >/dev/null 2>"$work/err"; rc=$?
set -e
[ "$rc" = 64 ] || fail "edgepulse-job without DATABASE_URL: exit $rc, want 64"
grep -q "DATABASE_URL is not set" "$work/err" || fail "edgepulse-job: no message for missing DATABASE_URL"
set +e
DATABASE_URL=postgresql://127.0.0.1:1/x "$job" frobnicate >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 64 ] || fail "edgepulse-job frobnicate: exit $rc, want 64"
"$job" --help | grep -q "edgepulse-job score" || fail "edgepulse-job --help does not list the jobs"

mkdir -p "$work/locks"
for j in score train alert retention ingest; do
  # Hold the job's lock as a running job would; the second run must not start anything.
  set +e
  flock "$work/locks/$j.lock" env EP_LOCK_DIR="$work/locks" EP_BIN_DIR="$work/nonexistent" \
    DATABASE_URL=postgresql://127.0.0.1:1/x EP_TENANTS=acme "$job" "$j" >/dev/null 2>"$work/err"
  rc=$?
  set -e
  [ "$rc" = 75 ] || { cat "$work/err" >&2; fail "edgepulse-job $j while locked: exit $rc, want 75"; }
  grep -q "another run holds" "$work/err" || fail "edgepulse-job $j: no message when locked"
done
# EP_STORE=db: score and train lock per tenant. A held tenant is skipped with a note
# (75); the others still run (here they fail on the missing program, a higher status).
for j in score train; do
  set +e
  flock "$work/locks/$j.acme.lock" env EP_LOCK_DIR="$work/locks" EP_BIN_DIR="$work/nonexistent" \
    DATABASE_URL=postgresql://127.0.0.1:1/x EP_STORE=db EP_TENANTS=acme "$job" "$j" >/dev/null 2>"$work/err"
  rc=$?
  set -e
  [ "$rc" = 75 ] || { cat "$work/err" >&2; fail "edgepulse-job $j (db) with tenant acme held: exit $rc, want 75"; }
  grep -q "tenant acme: another run holds" "$work/err" || fail "edgepulse-job $j (db): no note for the held tenant"
  set +e
  flock "$work/locks/$j.acme.lock" env EP_LOCK_DIR="$work/locks" EP_BIN_DIR="$work/nonexistent" \
    DATABASE_URL=postgresql://127.0.0.1:1/x EP_STORE=db EP_TENANTS="acme beta" "$job" "$j" >/dev/null 2>"$work/err"
  rc=$?
  set -e
  grep -q "tenant acme: another run holds" "$work/err" || fail "edgepulse-job $j (db): acme not skipped"
  grep -q "nonexistent/ep-features" "$work/err" || { cat "$work/err" >&2; fail "edgepulse-job $j (db): beta was not run"; }
  [ "$rc" != 0 ] && [ "$rc" != 75 ] || fail "edgepulse-job $j (db): exit $rc hides beta's failure"
  # The job-wide lock does not stop per-tenant runs: a run while another holds it is not refused.
  set +e
  flock "$work/locks/$j.lock" env EP_LOCK_DIR="$work/locks" EP_BIN_DIR="$work/nonexistent" \
    DATABASE_URL=postgresql://127.0.0.1:1/x EP_STORE=db EP_TENANTS=beta "$job" "$j" >/dev/null 2>"$work/err"
  rc=$?
  set -e
  [ "$rc" != 75 ] || { cat "$work/err" >&2; fail "edgepulse-job $j (db): refused by the job-wide lock"; }
done
# Unlocked, the job gets past the lock and fails on the missing program instead.
set +e
EP_LOCK_DIR="$work/locks" EP_BIN_DIR="$work/nonexistent" DATABASE_URL=postgresql://127.0.0.1:1/x \
  EP_TENANTS=acme "$job" alert >/dev/null 2>"$work/err"; rc=$?
set -e
[ "$rc" != 0 ] && [ "$rc" != 75 ] || fail "edgepulse-job alert unlocked with no programs: exit $rc"
units=$(ls "$unitdir" | grep -c '^ep-')
if [ "$mode" = deb ]; then
  chroot "$root" dpkg --purge edgepulse >"$work/dpkg.log" 2>&1 \
    || { cat "$work/dpkg.log" >&2; fail "dpkg --purge failed"; }
  [ ! -e "$root/etc/edgepulse" ] || fail "purge left /etc/edgepulse"
  [ ! -e "$unitdir/ep-ingest.service" ] || fail "purge left the units"
fi
echo "units_test: $mode: $units units verified"
