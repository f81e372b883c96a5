#!/usr/bin/env python3
"""Raw-frame helper for the packet integration test (Node has no AF_PACKET sockets).

  wire.py send-recv IFACE SECONDS   frames as hex lines on stdin; prints frames received
                                    on IFACE (not our own) within SECONDS as hex lines
  wire.py udp-listen ADDR PORT SECONDS  prints each datagram's payload as hex
"""
import select
import socket
import sys
import time

PACKET_OUTGOING = 4


def send_recv(iface: str, seconds: float) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    for line in sys.stdin.read().split():
        s.send(bytes.fromhex(line))
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([s], [], [], max(0.0, end - time.time()))
        if not ready:
            break
        data, addr = s.recvfrom(65535)
        if addr[2] != PACKET_OUTGOING:
            print(data.hex(), flush=True)


def udp_listen(addr: str, port: int, seconds: float) -> None:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([s], [], [], max(0.0, end - time.time()))
        if not ready:
            break
        data, _ = s.recvfrom(65535)
        print(data.hex(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send-recv":
        send_recv(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "udp-listen":
        udp_listen(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
