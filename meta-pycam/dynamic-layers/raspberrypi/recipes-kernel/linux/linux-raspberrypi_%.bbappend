# pycam kernel configuration fragments (the common ones live in the main layer)
FILESEXTRAPATHS:prepend:pycam := "${PYCAM_LAYERDIR}/recipes-kernel/linux/files:"

SRC_URI:append:pycam = " file://pycam.cfg file://pycam-rpi.cfg"
