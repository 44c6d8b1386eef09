#!/usr/bin/env bash
# Generates a small micro-learning course for the demo and the integration tests:
#
#   OUTDIR/course/index.html   HTML5 module: loads style.css and app.js, shows the images,
#                 style.css    embeds the video and renders the quiz from quiz.json
#                 app.js
#                 img/*.png    ffmpeg test pictures
#                 quiz.json
#                 handbook.pdf hand-written minimal PDF
#                 video/intro.mp4  H.264/AAC, 1280x720, 60 s, >= 20 MB, faststart
#                 imsmanifest.xml  the SCORM 1.2 package manifest naming every file (prefetch)
#
# Idempotent: a file that exists and is valid is left alone (so its mtime, and the origin's
# Last-Modified/ETag, stay stable across runs); anything missing, truncated or different is
# rebuilt. Every file is written to a temporary name and renamed, so an interrupted run never
# leaves a half-written file that a later run would take as valid.
#
# Usage: scripts/make-course.sh OUTDIR
set -euo pipefail

if [ $# -ne 1 ] || [ "${1:0:1}" = "-" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
command -v ffmpeg >/dev/null || { echo "make-course: ffmpeg not found (scripts/install-deps.sh)" >&2; exit 1; }
command -v ffprobe >/dev/null || { echo "make-course: ffprobe not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "make-course: python3 not found" >&2; exit 1; }

course="$1/course"
mkdir -p "$course/img" "$course/video"

min_video_bytes=$((20 * 1024 * 1024))
video_seconds=60
# Constant bit rate with filler data: the test pattern alone compresses to a few MB, and the
# demo needs a body big enough that streaming, ranges and request collapsing are visible.
video_kbps=3200

log() { echo "make-course: $*" >&2; }

# write_text PATH: stdin becomes PATH unless PATH already holds exactly those bytes.
write_text() {
  local dst="$1" tmp
  tmp="$(mktemp "$dst.tmp.XXXXXX")"
  chmod 644 "$tmp"
  cat >"$tmp"
  if [ -f "$dst" ] && cmp -s "$tmp" "$dst"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$dst"
    log "wrote ${dst#"$course/"}"
  fi
}

probe_ok() { ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$1" >/dev/null 2>&1; }

size_of() { stat -c %s "$1"; }

# ---------------------------------------------------------------------------------------------
# Images: one frame of a few lavfi test sources.
make_png() {
  local name="$1" src="$2" dst="$course/img/$1.png" tmp
  if [ -s "$dst" ] && probe_ok "$dst"; then return 0; fi
  tmp="$course/img/.$name.tmp.png"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$src" -frames:v 1 "$tmp"
  mv -f "$tmp" "$dst"
  log "wrote img/$name.png ($(size_of "$dst") bytes)"
}
make_png cover "testsrc2=size=960x540:rate=1"
make_png colours "smptehdbars=size=640x360:rate=1"
make_png pattern "mandelbrot=size=480x480:rate=1:maxiter=256"

# ---------------------------------------------------------------------------------------------
# Video: H.264 (constrained baseline, plays everywhere) + AAC, moov atom first (+faststart) so
# a browser can start playing before the whole file has arrived.
video_ok() {
  local f="$1" streams
  [ -f "$f" ] || return 1
  [ "$(size_of "$f")" -ge "$min_video_bytes" ] || return 1
  streams="$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$f" 2>/dev/null | sort | tr '\n' ' ')"
  [ "$streams" = "aac h264 " ] || return 1
  # faststart: the moov box comes before mdat.
  python3 - "$f" <<'EOF'
import sys
head = open(sys.argv[1], "rb").read(1 << 20)
moov, mdat = head.find(b"moov"), head.find(b"mdat")
sys.exit(0 if 0 <= moov and (mdat < 0 or moov < mdat) else 1)
EOF
}

video="$course/video/intro.mp4"
if ! video_ok "$video"; then
  tmp="$course/video/.intro.tmp.mp4"
  start=$(date +%s.%N)
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=$video_seconds" \
    -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=$video_seconds" \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
    -b:v "${video_kbps}k" -minrate "${video_kbps}k" -maxrate "${video_kbps}k" \
    -bufsize "$((video_kbps * 2))k" -x264-params nal-hrd=cbr \
    -c:a aac -b:a 128k -movflags +faststart -shortest "$tmp"
  end=$(date +%s.%N)
  if ! video_ok "$tmp"; then
    log "ERROR: generated video is invalid or smaller than $min_video_bytes bytes" \
      "($(size_of "$tmp") bytes); is ffmpeg built with libx264?"
    rm -f "$tmp"
    exit 1
  fi
  mv -f "$tmp" "$video"
  log "wrote video/intro.mp4 ($(size_of "$video") bytes in $(python3 -c "print(f'{$end-$start:.1f}')") s)"
fi

# ---------------------------------------------------------------------------------------------
# PDF: a two-page handbook written by hand; the xref offsets are computed, so it is a valid PDF
# that any viewer opens without repair.
python3 - <<'EOF' | write_text "$course/handbook.pdf"
import sys

pages = [
    ["Store Handbook: Receiving Deliveries", "",
     "1. Check the delivery note against the order.",
     "2. Count the cartons before signing.",
     "3. Report damage in the app within 24 hours."],
    ["Store Handbook: Cold Chain", "",
     "Chilled goods: 0 to 4 C. Frozen goods: -18 C or colder.",
     "Put chilled and frozen deliveries away first.",
     "Log the temperature of every chilled delivery."],
]

def esc(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

objs = []  # object bodies, numbered from 1
objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
for i, lines in enumerate(pages):
    text = ["BT", "/F1 20 Tf", "72 720 Td", f"({esc(lines[0])}) Tj", "/F1 12 Tf"]
    for line in lines[1:]:
        text += ["0 -22 Td", f"({esc(line)}) Tj"]
    text.append("ET")
    stream = "\n".join(text).encode()
    objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
    objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")

out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
offsets = []
for n, body in enumerate(objs, start=1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for off in offsets:
    out += b"%010d 00000 n \n" % off
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
sys.stdout.buffer.write(out)
EOF

# ---------------------------------------------------------------------------------------------
write_text "$course/quiz.json" <<'EOF'
{
  "id": "receiving-101",
  "title": "Receiving deliveries",
  "pass_mark": 2,
  "questions": [
    {
      "id": "q1",
      "text": "What do you check before signing for a delivery?",
      "choices": ["Nothing, the driver is in a hurry", "The carton count against the delivery note", "The weather"],
      "answer": 1
    },
    {
      "id": "q2",
      "text": "How cold must frozen goods be?",
      "choices": ["4 C", "0 C", "-18 C or colder"],
      "answer": 2
    },
    {
      "id": "q3",
      "text": "Which deliveries do you put away first?",
      "choices": ["Chilled and frozen", "Dry goods", "Whatever is nearest"],
      "answer": 0
    }
  ]
}
EOF

write_text "$course/style.css" <<'EOF'
/* Phone first: one column, large touch targets. */
body { margin: 0; font-family: system-ui, sans-serif; color: #1d2733; background: #f4f6f8; }
header { background: #0b5394; color: #fff; padding: 1rem; }
header h1 { margin: 0; font-size: 1.4rem; }
main { max-width: 48rem; margin: 0 auto; padding: 1rem; }
section { background: #fff; border-radius: 8px; padding: 1rem; margin-bottom: 1rem; }
video, img { width: 100%; height: auto; border-radius: 4px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fit, minmax(8rem, 1fr)); gap: .5rem; }
.question { margin-bottom: 1rem; }
.question label { display: block; padding: .6rem; margin: .25rem 0; border: 1px solid #ccd; border-radius: 4px; }
button { font-size: 1rem; padding: .7rem 1.4rem; border: 0; border-radius: 4px; background: #0b5394; color: #fff; }
#result { font-weight: bold; margin-top: 1rem; }
.pass { color: #1a7f37; }
.fail { color: #b42318; }
EOF

write_text "$course/app.js" <<'EOF'
// Renders quiz.json as a form and scores it in the page: the course works offline from the
// store cache, with no call back to the LMS until the result is sent.
"use strict";

async function loadQuiz() {
  const box = document.getElementById("quiz");
  let quiz;
  try {
    const res = await fetch("quiz.json", { cache: "no-cache" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    quiz = await res.json();
  } catch (err) {
    box.textContent = "Could not load the quiz: " + err.message;
    return;
  }
  document.getElementById("quiz-title").textContent = quiz.title;
  const form = document.createElement("form");
  quiz.questions.forEach((q) => {
    const div = document.createElement("div");
    div.className = "question";
    const p = document.createElement("p");
    p.textContent = q.text;
    div.appendChild(p);
    q.choices.forEach((choice, i) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = q.id;
      input.value = String(i);
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + choice));
      div.appendChild(label);
    });
    form.appendChild(div);
  });
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "Check answers";
  form.appendChild(button);
  const result = document.createElement("p");
  result.id = "result";
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const score = quiz.questions.filter((q) => data.get(q.id) === String(q.answer)).length;
    const passed = score >= quiz.pass_mark;
    result.textContent = `${score} of ${quiz.questions.length} correct: ` + (passed ? "passed" : "try again");
    result.className = passed ? "pass" : "fail";
  });
  box.replaceChildren(form, result);
}

document.addEventListener("DOMContentLoaded", loadQuiz);
EOF

write_text "$course/index.html" <<'EOF'
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Receiving deliveries</title>
  <link rel="stylesheet" href="style.css">
  <script src="app.js" defer></script>
</head>
<body>
  <header><h1>Receiving deliveries</h1></header>
  <main>
    <section>
      <h2>Watch</h2>
      <video controls preload="metadata" poster="img/cover.png">
        <source src="video/intro.mp4" type="video/mp4">
        Your browser cannot play this video: <a href="video/intro.mp4">download it</a>.
      </video>
    </section>
    <section>
      <h2>Look</h2>
      <div class="gallery">
        <img src="img/cover.png" alt="Test card">
        <img src="img/colours.png" alt="Colour bars">
        <img src="img/pattern.png" alt="Pattern">
      </div>
    </section>
    <section>
      <h2>Read</h2>
      <p><a href="handbook.pdf">Store handbook (PDF)</a></p>
    </section>
    <section>
      <h2 id="quiz-title">Quiz</h2>
      <div id="quiz">Loading the quiz...</div>
    </section>
  </main>
</body>
</html>
EOF

# The package manifest (SCORM 1.2) an LMS publishes with a course: what storecache's prefetch
# reads to have every file on the store server before the first learner opens it.
write_text "$course/imsmanifest.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<manifest identifier="receiving-deliveries" version="1.0"
    xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
    xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">
  <metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>
  <organizations default="org">
    <organization identifier="org">
      <title>Receiving deliveries</title>
      <item identifier="lesson" identifierref="module"><title>Receiving deliveries</title></item>
    </organization>
  </organizations>
  <resources>
    <resource identifier="module" type="webcontent" adlcp:scormtype="sco" href="index.html">
      <file href="index.html"/>
      <file href="style.css"/>
      <file href="app.js"/>
      <file href="quiz.json"/>
      <file href="handbook.pdf"/>
      <file href="img/cover.png"/>
      <file href="img/colours.png"/>
      <file href="img/pattern.png"/>
      <file href="video/intro.mp4"/>
    </resource>
  </resources>
</manifest>
EOF

log "course ready in $course"
