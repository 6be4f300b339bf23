# Checks that the build configuration is a pycam board and that the signing inputs exist.

addhandler pycam_sanity_check
pycam_sanity_check[eventmask] = "bb.event.SanityCheck"

python pycam_sanity_check() {
    import os
    machine = e.data.getVar('MACHINE')
    if not e.data.getVar('PYCAM_BOARD'):
        bb.fatal("MACHINE %s is not a pycam board: add board/<name>/board.yml with yocto.machine: %s "
                 "and run `python -m pycam.yocto sync`" % (machine, machine))
    for var in ('RAUC_KEY_FILE', 'RAUC_CERT_FILE', 'RAUC_KEYRING_FILE'):
        path = e.data.getVar(var) or ''
        if not os.path.isfile(path):
            bb.warn("%s (%s) does not exist: run `pycam keys init`, or point %s at your signing PKI; "
                    "bundles and rauc-conf cannot be built without it" % (var, path, var))
}
