"""Benchmark: building one evidence bundle for a busy premises.

Sets up a migrated SQLite database and an evidence store in a temporary directory, one
premises with N items in the default 12-month period (85% confirmed incidents recorded
through `record_incident`, a quarter of them with a witness or victim whose details are
also in the description; 15% completed visits with findings, inserted as rows) and M
photo-like JPEG attachments (1600x1200, gradient + blotches + grain) plus a few PDFs,
added through `add_attachment`. The setup is not measured.

Then it times `create_bundle` (gather the items, redact, render the police and the
shared copy, pack both ZIPs, store the four files) and reports where the time goes, by
timing wrappers this script puts around `render_bundle`, `_documents` (gathering and
redaction), `_package` (ZIPs) and `store.put` for the timed build only. Memory: the
growth of the process's peak RSS (`ru_maxrss`, KiB on Linux) over the timed build and,
with --tracemalloc, the tracemalloc peak of Python allocations over a second, identical
build. tracemalloc slows the code it traces about sevenfold (some 4 minutes at the
defaults), so it is kept out of the timed build and off unless asked for; without it a
run at the defaults takes under a minute.

`--database-url` and `--evidence-dir` name an empty database and store to work in
instead of a temporary directory's (`make bench` gives it new ones: DATA = "fresh");
`--json PATH` writes the figures as records (benchmarks/common.py). There is no bare
equivalent: most of the time is rendering PDFs.

    .venv/bin/python benchmarks/build_bundle.py [--items N] [--images M] [--pdfs P]
        [--tracemalloc] [--database-url URL --evidence-dir DIR --json PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks.common import add_common_options, database_kind, record, write_records  # noqa: E402
from licensing import create_app  # noqa: E402
from licensing.auth.services import create_authority, create_user  # noqa: E402
from licensing.cli import upgrade_database  # noqa: E402
from licensing.db import get_session  # noqa: E402
from licensing.evidence import pdf as bundle_pdf  # noqa: E402
from licensing.evidence import services as bundles  # noqa: E402
from licensing.evidence import store  # noqa: E402
from licensing.evidence.attachments import add_attachment  # noqa: E402
from licensing.evidence.models import BundleItem  # noqa: E402
from licensing.incidents.models import CATEGORIES  # noqa: E402
from licensing.incidents.services import record_incident  # noqa: E402
from licensing.premises.services import add_premises  # noqa: E402
from licensing.visits.models import COMPLETED, VISIT_TYPES, Visit  # noqa: E402

FIRST = ["Janet", "Peter", "Aisha", "Tomasz", "Siobhan", "Kwame", "Ewan", "Priya", "Liam"]
LAST = ["Quayle", "Okonjo", "Rahman", "Nowak", "Gallagher", "Mensah", "Byrne", "Shah"]
ROLES = ("victim", "witness", "reporter", "suspect")
WIDTH, HEIGHT = 1600, 1200
# What `make bench` gives it (benchmarks/run_all.py): an empty database of its own.
DATA = "fresh"


def photo_jpeg(rng: random.Random) -> bytes:
    """A 1600x1200 JPEG that compresses like a photo: a colour gradient, soft blotches
    (low-resolution noise scaled up), a few shapes and fine sensor grain."""
    channels = []
    for _ in range(3):
        ramp = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize((WIDTH, HEIGHT))
        blotches = Image.frombytes("L", (80, 60), rng.randbytes(80 * 60)).resize(
            (WIDTH, HEIGHT), Image.Resampling.BICUBIC
        )
        channels.append(Image.blend(ramp, blotches, 0.45))
    image = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        w, h = rng.randrange(40, 500), rng.randrange(40, 400)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), colour)
    image = image.filter(ImageFilter.GaussianBlur(2))
    grain = Image.frombytes("L", (WIDTH, HEIGHT), rng.randbytes(WIDTH * HEIGHT))
    image = Image.blend(image, Image.merge("RGB", [grain] * 3), 0.08)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def statement_pdf(number: int, pages: int = 3) -> bytes:
    """A plain text PDF of a few pages (a door-staff log, say): no active content."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    for page in range(pages):
        pdf.setFont("Helvetica", 11)
        for line in range(45):
            pdf.drawString(
                60,
                780 - line * 16,
                f"Door log {number}, page {page + 1}, entry {line + 1}: refused entry, "
                "customer intoxicated; CCTV retained.",
            )
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def setup(session: Any, items: int, images: int, pdfs: int, seed: int) -> dict[str, Any]:
    """The premises, its records and attachments; returns what the build needs."""
    rng = random.Random(seed)
    authority = create_authority(session, "BEN", "Benchmark Council")
    officer = create_user(
        session, "officer@example.test", "Bench Officer", "officer", "correct-horse-battery", None
    )
    premises = add_premises(
        session,
        officer,
        authority,
        "BEN/0001",
        {
            "name": "The Busy Arms",
            "address": "1 Mathew Street, Liverpool",
            "postcode": "L2 6RE",
            "licence_holder": "Busy Arms Ltd",
            "dps": "A. Manager",
        },
    )
    now = datetime.now(UTC)
    n_incidents = round(items * 0.85)
    n_visits = items - n_incidents
    incidents = []
    for i in range(n_incidents):
        data: dict[str, Any] = {
            "source": "rms",
            "source_ref": f"RMS-BENCH-{i:06d}",
            "occurred_at": (now - timedelta(days=1 + i * 360 / n_incidents)).isoformat(),
            "category": rng.choice(CATEGORIES),
            "description": "Disorder at closing time; door staff intervened and the "
            "customer was ejected. CCTV requested from the premises. " * 2,
            "location": "Outside the premises",
            "outcome": "Investigation complete; no further action",
        }
        if i % 4 == 0:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}-{i}"
            phone = f"07700 9{i:05d}"
            data["personal_data"] = {
                "people": [{"role": rng.choice(ROLES), "name": name, "phone": phone}]
            }
            data["description"] += f"{name} saw it and can be reached on {phone}."
        incidents.append(
            record_incident(session, officer, data, premises=premises, commit=False).incident
        )
        if i % 200 == 199:
            session.commit()
    session.commit()
    visits = []
    for i in range(n_visits):
        when = now - timedelta(days=1 + i * 360 / max(n_visits, 1), hours=3)
        issues = i % 3 == 0
        visit = Visit(
            premises_id=premises.id,
            visit_type=rng.choice(list(VISIT_TYPES)),
            status=COMPLETED,
            visit_date=when.date(),
            scheduled_at=when,
            officer_id=officer.id,
            outcome="issues_found" if issues else "compliant",
            visited_at=when,
            findings_crime_and_disorder="Door staff short; two fights logged." if issues else "",
            findings_public_safety="Fire exit partly blocked by kegs." if issues else "",
            findings_public_nuisance="Queue noise at 01:30." if i % 2 else "",
            follow_up_actions="Revisit within two weeks." if issues else "",
            created_by_id=officer.id,
            recorded_by_id=officer.id,
        )
        session.add(visit)
        visits.append(visit)
    session.commit()

    # Attachments on the records, half on incidents and half on visits (newest first).
    owners: list[dict[str, Any]] = []
    for i in range(images + pdfs):
        if i % 2 == 0 or not visits:
            owners.append({"incident": incidents[-1 - (i // 2) % len(incidents)]})
        else:
            owners.append({"visit": visits[(i // 2) % len(visits)]})
    image_bytes = 0
    started = time.perf_counter()
    for i in range(images):
        data = photo_jpeg(rng)
        image_bytes += len(data)
        add_attachment(
            session,
            officer,
            **owners[i],
            data=data,
            file_name=f"cctv-still-{i:03d}.jpg",
            description=f"CCTV still {i + 1}",
            holds_personal_data=False,
        )
    pdf_bytes = 0
    for i in range(pdfs):
        data = statement_pdf(i + 1)
        pdf_bytes += len(data)
        add_attachment(
            session,
            officer,
            **owners[images + i],
            data=data,
            file_name=f"door-log-{i:03d}.pdf",
            description=f"Door staff log {i + 1}",
            holds_personal_data=False,
        )
    print(
        f"setup: {n_incidents} incidents ({(n_incidents + 3) // 4} with a person), "
        f"{n_visits} visits, {images} JPEGs ({image_bytes / 1e6:.1f} MB, "
        f"{image_bytes / max(images, 1) / 1e3:.0f} kB each), {pdfs} PDFs "
        f"({pdf_bytes / 1e3:.0f} kB); attachments made and added in "
        f"{time.perf_counter() - started:.1f}s"
    )
    return {"officer": officer, "premises": premises}


class Timers:
    """Cumulative wall time of wrapped functions, for one run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def main() -> None:
    """Set up, build, and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000, help="incidents + visits")
    parser.add_argument("--images", type=int, default=50, help="JPEG attachments")
    parser.add_argument("--pdfs", type=int, default=3, help="PDF attachments (3 pages each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also build the bundle a second time under tracemalloc and report the peak of "
        "Python allocations (about 4 minutes more at the defaults)",
    )
    add_common_options(parser)
    args = parser.parse_args()
    run_started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as workdir:
        run(args, workdir)
    print(f"whole run: {time.perf_counter() - run_started:.0f} s (work directory removed)")


def run(args: argparse.Namespace, workdir: str) -> None:
    """One run in `workdir`: database, store, setup, the timed build, the figures."""
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    upgrade_database(url)
    evidence = args.evidence_dir or f"{workdir}/evidence"
    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url, "EVIDENCE_DIR": evidence})
    print(f"work directory: {workdir}")

    with app.app_context():
        session = get_session()
        started = time.perf_counter()
        made = setup(session, args.items, args.images, args.pdfs, args.seed)
        print(f"setup total: {time.perf_counter() - started:.1f}s")
        officer, premises = made["officer"], made["premises"]

        # The services import render_bundle from the pdf module at call time, and reach
        # the store through its module: patching the module attributes times the calls.
        timers = Timers()
        timers.wrap(bundle_pdf, "render_bundle", "render_bundle (both copies)")
        timers.wrap(bundles, "_documents", "_documents (gather records, redact)")
        timers.wrap(bundles, "_package", "_package (both ZIPs)")
        timers.wrap(store, "put", "store.put (4 files)")

        load = os.getloadavg()[0]
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        rss_before = cpu_before.ru_maxrss
        started = time.perf_counter()
        bundle = bundles.create_bundle(session, officer, premises)
        build_seconds = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        rss_after = cpu_after.ru_maxrss
        cpu_seconds = (cpu_after.ru_utime + cpu_after.ru_stime) - (
            cpu_before.ru_utime + cpu_before.ru_stime
        )
        split, calls = dict(timers.seconds), dict(timers.calls)

        item_count = session.scalar(
            select(func.count()).select_from(BundleItem).where(BundleItem.bundle_id == bundle.id)
        )
        sizes = {
            "police PDF": len(store.get(bundle.police_pdf_sha256)),
            "shared PDF": len(store.get(bundle.shared_pdf_sha256)),
            "police ZIP": len(store.get(bundle.police_zip_sha256)),
            "shared ZIP": len(store.get(bundle.shared_zip_sha256)),
        }
        blockers = len(bundles.blockers_of(session, bundle))
        label = bundle.label
        pages = bundle.page_count
        session.expunge_all()

        timers.restore()
        traced: tuple[float, int] | None = None
        if args.tracemalloc:
            # The same build again under tracemalloc, for the peak of Python allocations.
            tracemalloc.start()
            started = time.perf_counter()
            second = bundles.create_bundle(session, officer, premises)
            traced_seconds = time.perf_counter() - started
            traced = (traced_seconds, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            assert second.page_count == pages
    app.extensions["db_engine"].dispose()

    render_seconds = split.get("render_bundle (both copies)", 0.0)
    write_records(
        args.json,
        [
            record(
                "build_bundle",
                database_kind(url),
                f"build a {item_count:,}-item bundle ({args.images} JPEGs, {args.pdfs} PDFs)",
                build_seconds,
                "s",
                notes=f"{build_seconds / max(item_count, 1) * 1000:.1f} ms an item; {pages:,}"
                f" pages; rendering both PDFs {render_seconds:.1f} s"
                f" ({render_seconds / build_seconds:.0%}); CPU {cpu_seconds:.1f} s;"
                f" peak RSS growth {(rss_after - rss_before) / 1024:.0f} MiB; no bare"
                " equivalent (PDF rendering), no target set",
            )
        ],
    )
    measured = sum(split.values())
    print()
    print(f"bundle {label}: {item_count:,} items, {args.images} images + {args.pdfs} PDFs")
    print(f"blockers: {blockers}")
    print(f"pages of the shared copy: {pages:,}")
    print(f"build (create_bundle): {build_seconds:.2f} s")
    print(f"per item: {build_seconds / max(item_count, 1) * 1000:.1f} ms")
    print(
        f"CPU time of the build: {cpu_seconds:.2f} s (1-minute load average before it: "
        f"{load:.1f} on {os.cpu_count()} CPUs; wall time well above CPU time means the "
        "machine was busy with other work)"
    )
    for name, size in sizes.items():
        print(f"{name}: {size / 1e6:.2f} MB")
    print()
    print("| part of the build | calls | seconds | share |")
    print("|---|---:|---:|---:|")
    for name, seconds in split.items():
        print(f"| {name} | {calls.get(name, 0)} | {seconds:.2f} | {seconds / build_seconds:.0%} |")
    rest = build_seconds - measured
    print(
        f"| rest (period check, item sync, redaction log, flush, commit) | - | {rest:.2f} | {rest / build_seconds:.0%} |"
    )
    print(f"| total | | {build_seconds:.2f} | 100% |")
    print()
    print(
        f"peak RSS growth over the timed build (ru_maxrss after - before): "
        f"{(rss_after - rss_before) / 1024:.0f} MiB (peak RSS {rss_after / 1024:.0f} MiB, "
        f"{rss_before / 1024:.0f} MiB before the build)"
    )
    if traced is None:
        print(
            "tracemalloc peak: not measured (pass --tracemalloc: a second, traced build, "
            "about 7x slower than the timed one)"
        )
    else:
        print(
            f"tracemalloc peak of Python allocations over a second identical build: "
            f"{traced[1] / 2**20:.0f} MiB (that build took {traced[0]:.2f} s traced)"
        )


if __name__ == "__main__":
    main()
