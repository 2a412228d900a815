#!/bin/busybox sh
# The drplan lab guest (PID 1 of its initramfs, made by `drplan lab init --provider qemu`).
# It configures the NICs from drplan.ipN= on the kernel command line, then appends numbered,
# checksummed records to the disk whose serial is `data` (drplan's lab record format) until
# the power button is pressed; then it syncs and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
say() { echo "drplan-guest: $*"; }
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}";; esac; done; }
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" || say "module $m did not load"; done

# ACPI power-down (how drplan shuts a VM down) arrives as a key press of the power button.
for e in /sys/class/input/event*; do
  case "$(cat "$e/device/name" 2>/dev/null)" in *"Power Button"*)
    (head -c 24 "/dev/input/${e##*/}" >/dev/null; touch /run/stop) & ;;
  esac
done

vm=$(arg drplan.vm)
machine=${vm%%@*}
site=${vm#*@}
[ -n "$vm" ] || { machine=guest; site=unknown; }

i=0
mine=
while [ -e "/sys/class/net/eth$i" ]; do
  ip link set "eth$i" up
  mac=$(cat "/sys/class/net/eth$i/address")
  addr=$(arg "drplan.ip$i")
  if [ -n "$addr" ]; then
    ip addr add "$addr" dev "eth$i"
    mine="$mine ${addr%/*}"
    # Someone else answering for our address means two copies share a network.
    if arping -D -q -c 1 -w 1 -I "eth$i" "${addr%/*}"; then
      say "eth$i $mac ${addr%/*}"
    else
      say "eth$i $mac ${addr%/*} in use by another host"
    fi
  else
    say "eth$i $mac no address"
  fi
  i=$((i+1))
done

# Who answers for each peer address, logged when it changes.
peers=$(arg drplan.peers | tr , ' ')
if [ -n "$peers" ]; then
  (
    while [ ! -e /run/stop ]; do
      for p in $peers; do
        case " $mine " in *" $p "*) continue;; esac
        if ping -c 1 -W 1 "$p" >/dev/null 2>&1; then
          at=$(ip neigh show "$p" | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p')
        else
          at=none
        fi
        if [ "$(cat "/run/peer-$p" 2>/dev/null)" != "$at" ]; then
          echo "$at" > "/run/peer-$p"
          say "peer $p at $at"
        fi
      done
      sleep 2
    done
  ) &
fi

# The agent: on `freeze` (from the machine's freeze program, through the drplan.agent
# port) the writer finishes the record in hand, syncs and waits until `thaw`: a point taken
# meanwhile is app-consistent (its last record is whole and on disk).
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = drplan.agent ] && port=/dev/${p##*/}
done
# The port stays open: closing it discards what the host already sent (a thaw right behind
# the freeze's reply would be lost and the writer would stay frozen). A read at end of file
# means nobody is connected on the host's side yet; wait and read again. An answer to a host
# that gave up must not end the agent (SIGPIPE).
if [ -n "$port" ]; then
  (
    trap '' PIPE
    exec 3<>"$port"
    while [ ! -e /run/stop ]; do
      if ! read -r cmd <&3; then
        usleep 100000
        continue
      fi
      case "$cmd" in
        freeze)
          touch /run/freeze
          while [ ! -e /run/frozen ] && [ ! -e /run/stop ]; do usleep 20000; done
          say "frozen after record $(cat /run/frozen 2>/dev/null)"
          echo "frozen $(cat /run/frozen 2>/dev/null)" >&3 ;;
        thaw)
          rm -f /run/freeze
          say "thawed"
          echo thawed >&3 ;;
      esac
    done
  ) &
fi

data=
for try in 1 2 3 4 5 6 7 8 9 10; do
  for b in /sys/block/vd*; do [ "$(cat "$b/serial" 2>/dev/null)" = data ] && data=/dev/${b##*/}; done
  [ -n "$data" ] && break
  sleep 1
done
if [ -z "$data" ]; then
  say "no disk with serial data; idle"
  while [ ! -e /run/stop ]; do sleep 1; done
  poweroff -f
fi

n=$(dd if="$data" bs=64 count=1 2>/dev/null | sed -n 's/^DRPLANLAB \([0-9]*\).*/\1/p')
n=${n:-0}
say "$machine at $site writing records from $((n+1)) to $data"
while [ ! -e /run/stop ]; do
  if [ -e /run/freeze ]; then
    sync
    echo "$n" > /run/frozen
    while [ -e /run/freeze ] && [ ! -e /run/stop ]; do usleep 20000; done
    rm -f /run/frozen
  fi
  n=$((n+1))
  line="rec $n $machine $site $(date +%s)"
  printf '%-63.63s\n' "$line $(printf '%s' "$line" | crc32)" | dd of="$data" bs=64 seek="$n" count=1 conv=notrunc,fsync 2>/dev/null
  printf '%-63s\n' "DRPLANLAB $n" | dd of="$data" bs=64 count=1 conv=notrunc,fsync 2>/dev/null
  usleep 100000
done
sync
say "power button: stopped after record $n"
poweroff -f
