"""Run a command that starts a process group (torchrun, a launcher script)
for the tests, and kill the whole group if it hangs."""
import os
import signal
import subprocess
from typing import Dict, List

import pytest


def run_process_group(command: List[str], env: Dict[str, str], timeout: int,
                      **kwargs) -> str:
    """Run ``command`` in a new session; return its output (stdout and
    stderr). The test fails with the output's end if the command times out
    or exits with an error."""
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f'{" ".join(command[:3])} ... timed out after '
                    f'{timeout} s:\n{output[-3000:]}')
    assert process.returncode == 0, output[-12000:]
    return output
