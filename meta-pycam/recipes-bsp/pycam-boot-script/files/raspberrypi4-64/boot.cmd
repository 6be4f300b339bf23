# pycam A/B boot script: RAUC's U-Boot convention (BOOT_ORDER, BOOT_x_LEFT).
# Generated from ota/boot.cmd.in for board raspberrypi4-64 by both engines; compiled with mkimage.
#
# The environment lives raw on the boot disk in two copies, libubootenv's redundant
# format: [crc32][flag][data]. Linux reads and writes it with fw_printenv/fw_setenv
# (RAUC); this script reads and writes it itself, so the board's U-Boot needs no
# working saveenv (Debian's qemu_arm64 build cannot save to pflash under QEMU 7.2).

echo "pycam: boot script for raspberrypi4-64"

# --- load the newest valid copy ------------------------------------------------------
# `env import -c` expects [crc32][data]: read each copy, note its flag, then move the
# crc up by one byte so it sits directly before the data.
setenv env1_ok
setenv env2_ok
setenv flag1 0
setenv flag2 0
if mmc read 0x8000000 0x800 0x20; then
	setexpr.b flag1 *0x8000004
	cp.b 0x8000000 0x8100000 4
	cp.b 0x8100000 0x8000001 4
	setenv env1_ok 1
fi
if mmc read 0x8010000 0x880 0x20; then
	setexpr.b flag2 *0x8010004
	cp.b 0x8010000 0x8100000 4
	cp.b 0x8100000 0x8010001 4
	setenv env2_ok 1
fi

# The newer copy is the one whose flag is one ahead (modulo 256), as libubootenv writes it.
setexpr next1 ${flag1} + 1
setexpr next1 ${next1} \& ff
setenv env_first 1
if test "${next1}" = "${flag2}"; then
	setenv env_first 2
elif test "${flag1}" = "${flag2}"; then
	setenv env_first 2
fi

setenv env_current
if test "${env_first}" = "2"; then
	if test -n "${env2_ok}" && env import -c 0x8010001 0x3fff BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
		setenv env_current 2
	elif test -n "${env1_ok}" && env import -c 0x8000001 0x3fff BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
		setenv env_current 1
	fi
else
	if test -n "${env1_ok}" && env import -c 0x8000001 0x3fff BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
		setenv env_current 1
	elif test -n "${env2_ok}" && env import -c 0x8010001 0x3fff BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
		setenv env_current 2
	fi
fi
if test -z "${env_current}"; then
	echo "pycam: no valid environment copy; using defaults"
	setenv flag2 ff
	setenv env_current 2
fi

# --- choose a slot -------------------------------------------------------------------
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

setenv slot
for s in ${BOOT_ORDER}; do
	if test -z "${slot}"; then
		if test "${s}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
			setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
			setenv slot A
		elif test "${s}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
			setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
			setenv slot B
		fi
	fi
done

setenv pycam_reset
if test -z "${slot}"; then
	echo "pycam: no slot has boot attempts left; resetting the counters to 3 and resetting"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
	setenv pycam_reset 1
fi

# --- save: write the older copy with the next flag, before booting ---------------------
if test "${env_current}" = "1"; then
	setexpr newflag ${flag1} + 1
	setenv target_blk 0x880
else
	setexpr newflag ${flag2} + 1
	setenv target_blk 0x800
fi
setexpr newflag ${newflag} \& ff
mw.b 0x8100000 0 0x4000
env export -c -s 0x3fff 0x8100001 BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
cp.b 0x8100001 0x8000000 4
cp.b 0x8000000 0x8100000 4
mw.b 0x8100004 ${newflag} 1
if mmc write 0x8100000 ${target_blk} 0x20; then
	echo "pycam: saved boot counters (copy at block ${target_blk}, flag ${newflag})"
else
	echo "pycam: WARNING: could not save the boot counters"
fi

if test -n "${pycam_reset}"; then
	reset
fi

# --- boot the chosen slot --------------------------------------------------------------
if test "${slot}" = "A"; then
	setenv kernel_part 2
	setenv root_dev /dev/mmcblk0p4
else
	setenv kernel_part 3
	setenv root_dev /dev/mmcblk0p5
fi
echo "pycam: booting slot ${slot} (BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT})"

setenv bootargs "console=ttyS0,115200 root=${root_dev} rootfstype=squashfs ro rootwait rauc.slot=${slot} panic=5 quiet loglevel=4"
if load mmc 0:${kernel_part} 0x03000000 Image && load mmc 0:${kernel_part} 0x06000000 initrd.img; then
	booti 0x03000000 0x06000000:${filesize} ${fdt_addr}
fi
echo "pycam: slot ${slot} did not boot; resetting"
reset
