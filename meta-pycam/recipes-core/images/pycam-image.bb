SUMMARY = "pycam camera firmware: the read-only squashfs root and the A/B disk image"
DESCRIPTION = "The root filesystem of one rootfs slot (squashfs, read-only) with systemd, \
the pycam camera app, RAUC and its hawkBit client, libubootenv, the watchdog configuration \
and the factory tools; and the whole-disk wic image (partitions/ab-squashfs.yml) with the \
boot script, the redundant U-Boot environment and both kernel and rootfs slots. The same \
roles as the default engine's rootfs/packages.yml."
LICENSE = "MIT"

inherit core-image

# --- contents: rootfs/packages.yml, role by role -----------------------------------------
IMAGE_INSTALL = " \
    packagegroup-core-boot \
    dbus \
    kmod \
    iproute2 \
    e2fsprogs-mke2fs \
    e2fsprogs-e2fsck \
    v4l-utils \
    openssl-bin \
    python3-core \
    python3-aiohttp \
    python3-av \
    rauc \
    rauc-service \
    rauc-hawkbit-updater \
    libubootenv-bin \
    xdelta3 \
    util-linux-losetup \
    python3-json \
    python3-crypt \
    pycam-app \
    pycam-config \
    pycam-rootfs-overlay \
    ${PYCAM_MACHINE_PACKAGES} \
"
# rauc: the CLI; rauc-service: the D-Bus service and rauc.service; libubootenv-bin:
# fw_printenv/fw_setenv for RAUC's uboot backend; e2fsprogs: factory provisioning formats
# the factory partition; v4l-utils: camera diagnostics and the factory self-test;
# openssl-bin: factory provisioning (the device makes its own key and CSR); xdelta3,
# util-linux-losetup (--sizelimit, --show) and Python's json and hashlib: the delta-install hook
# every delta bundle carries (ota/hooks/delta-install) rebuilds the images from the running slot.
PYCAM_MACHINE_PACKAGES ??= ""

# (the board's kernel modules are pycam-config's recommendations: board.yml kernel.modules)

IMAGE_FEATURES = "read-only-rootfs"
# development images: root logs in on the console without a password; PYCAM_RELEASE = "1" locks it
PYCAM_RELEASE ??= "0"
IMAGE_FEATURES += "${@'' if d.getVar('PYCAM_RELEASE') == '1' else 'allow-empty-password empty-root-password allow-root-login'}"
IMAGE_LINGUAS = ""

# --- the root: squashfs with the default engine's compressor and options ------------------
# (PYCAM_ROOTFS_FSTYPE and its EXTRA_IMAGECMD come from pycam-product.inc)
IMAGE_FSTYPES = "${PYCAM_ROOTFS_FSTYPE} wic wic.bmap wic.zst"

# --- the disk: pycam-<machine>.wks.in (WKS_FILE, generated from partitions/) --------------
# rawcopy of this image's squashfs into rootfs_a/rootfs_b, the kernel slot image into
# kernel_a/kernel_b, the two U-Boot environment copies outside the table
# nooelint: oelint.vars.specific - an image type override
IMAGE_TYPEDEP:wic = "${PYCAM_ROOTFS_FSTYPE}"
do_image_wic[depends] += " \
    pycam-boot-script:do_deploy \
    pycam-bootenv:do_deploy \
    pycam-kernel-image:do_deploy \
"
WKS_FILE_DEPENDS:append = " dosfstools-native mtools-native e2fsprogs-native"
IMAGE_BOOT_FILES:qemuall = "boot.scr"

# --- systemd units: rootfs/units.yml (PYCAM_UNITS_ENABLE / PYCAM_UNITS_MASK) ------------
ROOTFS_POSTPROCESS_COMMAND:append = " pycam_units; pycam_build_id;"
do_rootfs[depends] += "systemd-systemctl-native:do_populate_sysroot"

pycam_units() {
    for unit in ${PYCAM_UNITS_ENABLE}; do
        systemctl --root=${IMAGE_ROOTFS} enable $unit
    done
    for unit in ${PYCAM_UNITS_MASK}; do
        systemctl --root=${IMAGE_ROOTFS} mask $unit
    done
}

# /etc/pycam/build-id: the health gate remembers which build proved itself on a slot
python pycam_build_id() {
    import os
    path = os.path.join(d.getVar('IMAGE_ROOTFS'), 'etc', 'pycam', 'build-id')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('%s+%s\n' % (d.getVar('PYCAM_VERSION'), d.getVar('DATETIME')))
}
pycam_build_id[vardepsexclude] += "DATETIME"
