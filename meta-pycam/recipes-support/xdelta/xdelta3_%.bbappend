# lzma secondary compression on the build host (xdelta3-native: make-delta names `-S lzma`) and on
# the device (the delta-install hook decodes patches from either engine; Debian's xdelta3 encodes
# with lzma by default)
PACKAGECONFIG:append:pycam = " lzma"
