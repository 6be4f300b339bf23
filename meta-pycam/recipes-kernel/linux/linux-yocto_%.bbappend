# pycam kernel configuration fragments (squashfs, overlay, dm-verity, nbd, watchdog; QEMU: vivid)
FILESEXTRAPATHS:prepend:pycam := "${THISDIR}/files:"

SRC_URI:append:pycam = " file://pycam.cfg"
SRC_URI:append:pycam:qemuall = " file://pycam-qemu.cfg"
