"""The ten-line test of README.md's "From Python" section, verbatim (it runs from this directory)."""


def run_puts(process, count):  # the program runs `count` ucp_put_nbx calls and prints each status
    process.send(f"run {count}")
    return [int(line.split()[3]) for line in process.read_until("DONE") if line.startswith("CALL ")]

def test_puts_fail_under_faults_and_pass_after(shimmed, ucx_faults):
    process = shimmed(["./ucx_selfloop", "--stdin", "--ops", "put"])
    with ucx_faults(process, strategy="X", hooks=["ucp_put_nbx"], error_codes=[-3, -20]):
        assert run_puts(process, 4) == [-3, -20, -3, -20]
    assert run_puts(process, 2) == [0, 0]
