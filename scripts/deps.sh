#!/bin/sh
# Installs the Debian packages sld builds with, when any is missing.
# Uses sudo when not root. Safe to run repeatedly.
set -e
# python3 (standard library only): tools/pth_to_safetensors.py converts the FID Inception
# test fixture until sld_st_open reads .pth itself.
PKGS="build-essential libdnnl-dev libcjson-dev libpcre2-dev libutf8proc-dev libpng-dev \
      libzip-dev liblapack-dev libmicrohttpd-dev libcurl4-openssl-dev python3"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing >/dev/null
