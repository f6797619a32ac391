"""What a probe saw, read into facts: ping and curl (`probes`) and the router's packet
counters around them (`counters`), for the lab's tests, grading and document mode alike."""
