"""What the kernel tests, `make bench` and scripts/record_fixture.py share to drive a real kernel:
veth pairs in network namespaces and the traffic through them (netns.py), and netscope's TUI in tmux
(tmux.py). Not part of the netscope package."""
