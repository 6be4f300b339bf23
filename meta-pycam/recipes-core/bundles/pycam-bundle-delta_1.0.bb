SUMMARY = "pycam delta update bundle (xdelta3 patches against a base release)"
DESCRIPTION = "The delta bundle of the default engine (pycam bundle --delta-from), built from \
pycam-image's root and the kernel slot image: one xdelta3 patch per slot image against the full \
bundle of the release the devices run (PYCAM_DELTA_BASE), delta.json and the delta-install hook, \
which rebuilds each image from the running slot and checks its sha256 before RAUC activates it."

require pycam-bundle.inc

DEPENDS += "xdelta3-native"

# the delta tooling of both engines, copied from ota/ by `python -m pycam.yocto sync`:
# make-delta (patches + delta.json) and the device hook
SRC_URI = " \
    file://make-delta \
    file://delta-install \
"

# the full .raucb of the release the devices run (both engines' full bundles work), e.g. in
# local.conf or a kas overlay: PYCAM_DELTA_BASE = "/srv/releases/pycam-qemuarm64-0.1.0.raucb"
PYCAM_DELTA_BASE ??= ""

RAUC_BUNDLE_HOOKS[file] = "delta-install"
RAUC_BUNDLE_HOOKS[hooks] = "install-check"

# the slots carry do_delta's patches (from WORKDIR), applied on the device by the hook
RAUC_SLOT_rootfs[type] = "file"
RAUC_SLOT_rootfs[file] = "rootfs.xdelta"
RAUC_SLOT_rootfs[rename] = "rootfs.xdelta"
RAUC_SLOT_rootfs[hooks] = "install"
RAUC_SLOT_rootfs[depends] = "pycam-image:do_image_complete"

RAUC_SLOT_kernel[type] = "file"
RAUC_SLOT_kernel[file] = "kernel.xdelta"
RAUC_SLOT_kernel[rename] = "kernel.xdelta"
RAUC_SLOT_kernel[hooks] = "install"
RAUC_SLOT_kernel[depends] = "pycam-kernel-image:do_deploy"

RAUC_BUNDLE_EXTRA_FILES = "delta.json"

def pycam_delta_base_checksum(d):
    import os
    base = d.getVar('PYCAM_DELTA_BASE')
    return '%s:%s' % (base, os.path.isfile(base)) if base else ''

python do_delta() {
    import os
    import shutil
    import subprocess

    base = d.getVar('PYCAM_DELTA_BASE')
    if not base:
        bb.fatal("PYCAM_DELTA_BASE is not set: set it to the full .raucb of the release the devices run "
                 "(local.conf or a kas overlay; meta-pycam/README.md)")
    if not os.path.isfile(base):
        bb.fatal("PYCAM_DELTA_BASE = \"%s\": no such file; point it at the full .raucb of the release "
                 "the devices run" % base)
    keyring = d.getVar('RAUC_KEYRING_FILE')
    if not keyring or not os.path.isfile(keyring):
        bb.fatal("RAUC_KEYRING_FILE = \"%s\": no keyring to check PYCAM_DELTA_BASE's signature against"
                 % (keyring or ''))

    workdir = d.getVar('WORKDIR')
    extracted = os.path.join(workdir, 'delta-base')
    shutil.rmtree(extracted, ignore_errors=True)
    deploy = d.getVar('DEPLOY_DIR_IMAGE')
    steps = [
        # rauc checks the base's signature against the product keyring before unpacking it
        ('rauc extract', [os.path.join(d.getVar('STAGING_BINDIR_NATIVE'), 'rauc'), 'extract',
                          '--keyring=' + keyring, base, extracted],
         "RAUC extracts a bundle signed by a certificate RAUC_KEYRING_FILE trusts, owned by the user "
         "running BitBake (or root) and not writable by others: copy it into place"),
        ('make-delta', ['python3', os.path.join(workdir, 'make-delta'), '--base', extracted,
                        '--compatible', d.getVar('RAUC_BUNDLE_COMPATIBLE'),
                        '--version', d.getVar('RAUC_BUNDLE_VERSION'), '--build', d.getVar('RAUC_BUNDLE_BUILD'),
                        '--image', 'rootfs=' + os.path.join(deploy, d.getVar('PYCAM_ROOTFS_IMAGE')),
                        '--image', 'kernel=' + os.path.join(deploy, d.getVar('PYCAM_KERNEL_IMAGE')),
                        '--out', workdir],
         "make-delta's hint above says what to change"),
    ]
    for what, cmd, hint in steps:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.stdout.strip():
            bb.note(proc.stdout.rstrip())
        if proc.returncode != 0:
            bb.fatal("%s failed (exit %d), PYCAM_DELTA_BASE = \"%s\":\n%s\n%s"
                     % (what, proc.returncode, base, proc.stdout.strip(), hint))
    shutil.rmtree(extracted)
}
# a new base bundle at the same path makes a new delta
do_delta[file-checksums] += "${@pycam_delta_base_checksum(d)}"
addtask delta after do_unpack do_prepare_recipe_sysroot before do_configure

# the manifest states what make-delta recorded in delta.json (the build id the device's hook reports)
python do_configure:prepend() {
    import json
    import os
    with open(os.path.join(d.getVar('WORKDIR'), 'delta.json')) as f:
        info = json.load(f)
    d.setVar('RAUC_BUNDLE_BUILD', info['target']['build'])
    d.setVar('RAUC_BUNDLE_DESCRIPTION', '%s, delta from %s' % (d.getVar('RAUC_BUNDLE_DESCRIPTION'),
                                                                info['base']['version']))
}
