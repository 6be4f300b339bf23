# The Yocto image's OTA client is meta-rauc's rauc-hawkbit-updater (the default engine runs
# pycam-ota from ota/client). Both read the file the factory line provisions,
# /factory/ota/hawkbit.conf (contracts.md); the drop-in points the service at it, starts it only
# on a provisioned device and after the health gate has decided on the booted slot.
FILESEXTRAPATHS:prepend:pycam := "${THISDIR}/files:"
SRC_URI:append:pycam = " file://10-pycam.conf"

do_install:append:pycam() {
    install -d ${D}${systemd_system_unitdir}/rauc-hawkbit-updater.service.d
    install -m 0644 ${WORKDIR}/10-pycam.conf ${D}${systemd_system_unitdir}/rauc-hawkbit-updater.service.d/10-pycam.conf
}

FILES:${PN}:append:pycam = " ${systemd_system_unitdir}/rauc-hawkbit-updater.service.d"
