# rootfs/initramfs/init (shared with the default engine) installs busybox's applet links itself
FILESEXTRAPATHS:prepend:pycam := "${THISDIR}/files:"
SRC_URI:append:pycam = " file://pycam-initramfs.cfg"
