# /etc/fstab of the read-only root (factory, /data, tmpfs, binds from /data), generated per
# board from partitions/ by `python -m pycam.yocto sync` into files/<machine>/fstab
FILESEXTRAPATHS:prepend:pycam := "${THISDIR}/files:"

# /etc/hostname comes from rootfs/overlay (pycam-rootfs-overlay)
hostname:pycam = ""
