"""The controller: the cluster's metadata as a log of records, and the decisions that write it
(broker registration and fencing, topics and replica placement, leader election, ISR changes,
producer id blocks), modelled on Kafka's KRaft QuorumController with a single voter."""
