import tempfile, time
import scenarios.clients.failover as F
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin
S={"broker.heartbeat.interval.ms":"300","broker.session.timeout.ms":"1500","group.initial.rebalance.delay.ms":"0"}
T0=[time.monotonic()]
def mark(what):
    print(f"{time.monotonic()-T0[0]:6.2f} {what}", flush=True)
def main():
    orig_kill, orig_restart, orig_wait = LocalCluster.kill, LocalCluster.restart, F.wait_for
    def kill(self, n): mark(f"kill {n}"); orig_kill(self, n)
    def restart(self, n): mark(f"restart {n}"); r=orig_restart(self, n); mark(f"restarted {n}"); return r
    def wait_for(*a, **k): r=orig_wait(*a, **k); mark(f"waited {a[3]}"); return r
    LocalCluster.kill, LocalCluster.restart, F.wait_for = kill, restart, wait_for
    with tempfile.TemporaryDirectory() as d:
        c=LocalCluster(d,3,S).start()
        try:
            admin=TopicAdmin(c.bootstrap)
            with F.FailoverClients(c.bootstrap) as cl:
                for name in ("u","l"):
                    admin.create(name,1,replication_factor=3,configs={"min.insync.replicas":"1" if name=="u" else "2","unclean.leader.election.enable":"true"})
                    F.in_sync(admin,name)
                    cl.begin(name,1000,{"enable.idempotence":False})
                    T0[0]=time.monotonic(); mark("start")
                    time.sleep(0.5)
                    k = F.kill_isr_of_one(c,admin,cl,name,0.5,1) if name=="u" else F.kill_leader(c,admin,cl,name)
                    mark("kill done")
                    p=cl.end(); mark("ended")
                    r=cl.read(name); mark("read")
                    admin.delete(name); mark("deleted")
        finally:
            c.stop()
if __name__=="__main__":
    main()
