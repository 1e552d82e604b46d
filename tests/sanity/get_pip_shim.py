"""Stand-in for the pip bootstrap script that ansible-test downloads from its own file server.

That server is out of reach here; PyPI is not. ansible-test runs this file as ``__main__`` with
pip's options and the packages to install (``pip==X.Y``) inside each fresh test venv. We install
them with the pip wheel that ``make sanity`` downloaded beside this file (same folder, found by
glob), which pip can run straight from the wheel.
"""

import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = sorted(glob.glob(os.path.join(HERE, "pip-*.whl")))
if not WHEELS:
    sys.exit("get_pip shim: no pip wheel beside %s" % HERE)
sys.path.insert(0, WHEELS[-1])

from pip._internal.cli.main import main  # noqa: E402  (import from the wheel just added)

# get-pip's own switches; the packages are named explicitly, so they need no translation.
ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", "--find-links", HERE] + ARGS))
