#!/usr/bin/env bash
# Builds wind-stats.oci.tar (and copies the wind-stats example's data here), the wind-stats payload's image as an OCI archive next to job.yaml, without
# any registry: the base image is this machine's own python3, its standard library and the libraries it
# loads (found with ldd), imported with `podman import`; the payload is added by the Containerfile.
# Installs podman from Debian's archive first when it is missing (needs root then).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base=localhost/squall-python-base:3.11
image=localhost/wind-stats:1

if ! command -v podman >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "build-image.sh: podman is missing; install it (apt-get install podman runc uidmap)" >&2
        exit 3
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc uidmap >/dev/null
fi
# where podman runs inside a container its defaults fail; the settings in containers.conf work there
if [ -z "${CONTAINERS_CONF:-}" ] && ! podman info >/dev/null 2>&1; then
    export CONTAINERS_CONF="$here/containers.conf"
fi

python=$(readlink -f /usr/bin/python3)  # the system's python3 (Debian's), not a virtualenv's or pyenv's
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
root=$(mktemp -d)
chmod 755 "$root"  # the image's / (mktemp makes it 0700: only root could enter it)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/x86_64-linux-gnu" "$root/usr/lib64" "$root/tmp" "$root/$stdlib"
chmod 1777 "$root/tmp"
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
cp "$python" "$root/usr/bin/python$version"
ln -s "python$version" "$root/usr/bin/python3"
cp "$(readlink -f /bin/sh)" "$root/usr/bin/sh"
cp -a "$stdlib/." "$root/$stdlib/"
rm -rf "$root/$stdlib/test" "$root/$stdlib/idlelib" "$root/$stdlib/tkinter" "$root/$stdlib/site-packages"
# every shared library python3, sh and the standard library's extension modules load
for library in $( (ldd "$python" "$(readlink -f /bin/sh)" "$stdlib"/lib-dynload/*.so 2>/dev/null || true) \
                  | awk '/=> \// {print $3}' | sort -u); do
    cp -L "$library" "$root/usr/lib/x86_64-linux-gnu/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/usr/lib64/"
tar -C "$root" -cf "$root.tar" .
podman import --quiet "$root.tar" "$base" >/dev/null
rm -f "$root.tar"

podman build --quiet --file "$here/Containerfile" --tag "$image" "$here/.." >/dev/null
rm -f "$here/wind-stats.oci.tar"
podman save --quiet --format oci-archive --output "$here/wind-stats.oci.tar" "$image"
# the same measurements as the wind-stats example, as this spec's inputs (inputs stay inside a spec's folder)
rm -rf "$here/data"
cp -r "$here/../wind-stats/data" "$here/data"
echo "built $here/wind-stats.oci.tar ($(du -h "$here/wind-stats.oci.tar" | cut -f1)) from $image"
