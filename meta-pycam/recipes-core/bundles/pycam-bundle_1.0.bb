SUMMARY = "pycam full update bundle (RAUC, verity)"
DESCRIPTION = "Signed RAUC bundle with pycam-image's root and the kernel slot image: \
installs both slots of the inactive slot group."

require pycam-bundle.inc
