# /etc/fw_env.config for libubootenv (RAUC's uboot backend): the two raw environment copies
# of partitions/, generated per board into files/<machine>/. meta-raspberrypi already lists
# file://fw_env.config (its copy points at a FAT uboot.env); ours is found first in FILESPATH.
FILESEXTRAPATHS:prepend:pycam := "${THISDIR}/files:"

SRC_URI:append:pycam:qemuarm64 = " file://fw_env.config"
