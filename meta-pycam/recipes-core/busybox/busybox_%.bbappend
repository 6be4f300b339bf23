# rootfs/initramfs/init (shared with the default engine) installs busybox's applet links itself
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI += "file://pycam-initramfs.cfg"
