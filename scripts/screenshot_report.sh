#!/usr/bin/env bash
# Open a piami report.html in headless Chromium and save a screenshot, to check that it renders
# (figures embedded, tables laid out) in a real browser.
#
#   scripts/screenshot_report.sh out/belief-geometry/report.html [screenshot.png] [WIDTHxHEIGHT]
#
# Needs Chromium (Debian: apt-get install -y chromium). Exits 1 when no browser is found, when the
# browser fails, or when the screenshot is missing or empty. Nothing is fetched from the network:
# the report is self-contained.
set -euo pipefail

report="${1:?usage: $0 REPORT.html [SCREENSHOT.png] [WIDTHxHEIGHT]}"
shot="${2:-${report%.html}.png}"
size="${3:-1200x3000}"

if [[ ! -f "$report" ]]; then
  echo "no report at $report: run 'piami run NAME' first" >&2
  exit 1
fi
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser="$b"; break; fi
done
if [[ -z "$browser" ]]; then
  echo "no Chromium found: install it (Debian: apt-get install -y chromium)" >&2
  exit 1
fi

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
shot="$(realpath -m "$shot")"
rm -f "$shot"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --user-data-dir="$profile" --window-size="${size/x/,}" --screenshot="$shot" "$url" \
  >/dev/null 2>&1 || true
if [[ ! -s "$shot" ]]; then
  echo "$browser did not write a screenshot of $report" >&2
  exit 1
fi
echo "screenshot: $shot"
