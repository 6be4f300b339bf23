SUMMARY = "pycam initial U-Boot environment: both redundant copies for the raw env area"
DESCRIPTION = "The two libubootenv-format copies (CRC, flag, data) the wic image places at the \
offsets of partitions/ (see fw_env.config); the variables are ota/ota.yml's boot order and \
attempts. Copy 1 carries the newer flag, as in the default engine."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

DEPENDS = "u-boot-tools-native"

SRC_URI = "file://uboot-env.txt"

S = "${WORKDIR}"
B = "${WORKDIR}/build"

INHIBIT_DEFAULT_DEPS = "1"

inherit deploy nopackages

PACKAGE_ARCH = "${MACHINE_ARCH}"

do_compile() {
    # redundant layout: crc32, flag byte (1 = newer), data padded with zero bytes
    # PYCAM_ENV_SIZE: bytes per copy, from partitions/ (pycam-board-${MACHINE}.inc)
    uboot-mkenvimage -r -p 0 -s ${PYCAM_ENV_SIZE} -o ${B}/pycam-uboot-env-1.bin ${S}/uboot-env.txt
    cp ${B}/pycam-uboot-env-1.bin ${B}/pycam-uboot-env-2.bin
    # copy 2: same data and CRC (the CRC does not cover the flag), older flag 0
    printf '\000' | dd of=${B}/pycam-uboot-env-2.bin bs=1 seek=4 conv=notrunc status=none
}

do_deploy() {
    install -m 0644 ${B}/pycam-uboot-env-1.bin ${B}/pycam-uboot-env-2.bin ${DEPLOYDIR}/
}
addtask deploy after do_compile before do_build
