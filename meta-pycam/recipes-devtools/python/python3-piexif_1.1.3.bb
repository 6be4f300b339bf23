SUMMARY = "Exif manipulation with pure Python (picamera2 writes JPEG metadata with it)"
DESCRIPTION = "Reads, writes and removes Exif data in JPEG and WebP files in pure \
Python; picamera2 adds capture metadata to JPEGs with it."
HOMEPAGE = "https://github.com/hMatoba/Piexif"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE.txt;md5=de3294fd570f87ece3b7ab7ccd61a108"

SRC_URI = "${PYPI_SRC_URI};downloadfilename=piexif-${PV}.zip"
SRC_URI[sha256sum] = "83cb35c606bf3a1ea1a8f0a25cb42cf17e24353fd82e87ae3884e74a302a5f1b"

PYPI_PACKAGE_EXT = "zip"

inherit pypi setuptools3

RDEPENDS:${PN} += "python3-core python3-io"
