; A small zone with the conflicts failover-sim looks for (RFC 1034 3.6.2,
; RFC 2181 10.1): try `failover-sim validate --zone examples/db.example.com`
; and `failover-sim audit examples/db.example.com --service www`.
; Addresses are from the documentation ranges (RFC 5737).
$ORIGIN example.com.
$TTL 3600
@        IN SOA   ns1.example.com. hostmaster.example.com. 2026120201 7200 3600 1209600 3600
@        IN NS    ns1.example.com.
@        IN NS    ns2.example.com.
ns1      IN A     192.0.2.53
ns2      IN A     198.51.100.53
; Conflict 1: the apex pointed at a load balancer's DNS name with a CNAME,
; beside the SOA and NS every apex holds (Route 53 refuses this record).
@        IN CNAME my-elb-1234567890.us-east-1.elb.amazonaws.com.
; Conflict 2: the web name has a CNAME to the balancer and an MX beside it.
www      IN CNAME my-elb-1234567890.us-east-1.elb.amazonaws.com.
www      IN MX    10 mail.example.com.
; Allowed: mail and the API behind static addresses (an Elastic IP).
mail     IN A     192.0.2.25
@        IN MX    10 mail.example.com.
api      IN A     203.0.113.10
