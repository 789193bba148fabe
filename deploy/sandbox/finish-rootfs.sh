#!/bin/sh
# Finish a debootstrap root filesystem for the sandbox image: finish-rootfs.sh ROOTFS USER UID GID.
# Runs on the host against the folder, never inside it (nothing in the rootfs is executed).
set -eu
root=$1 user=$2 uid=$3 gid=$4

# The unprivileged user; its home is the private /tmp, the only writable place besides the workdir.
echo "$user:x:$gid:" >>"$root/etc/group"
echo "$user:x:$uid:$gid:autofix sandbox:/tmp:/usr/sbin/nologin" >>"$root/etc/passwd"
echo "$user:*:19000:0:99999:7:::" >>"$root/etc/shadow"

# Host folders are mounted at their own paths; the engine makes the mount points, and one under
# /root (a state folder in root's home) must be reachable by the sandbox user. /root is empty here.
chmod 0755 "$root/root"

# No network at run time, so no package index or downloaded packages; no documentation either.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
