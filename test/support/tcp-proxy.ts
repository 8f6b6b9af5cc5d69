/**
 * A TCP proxy on loopback that a test can cut and restore: the broker "goes down" for the
 * processes behind it without stopping the machine's shared RabbitMQ.
 */
import type { Socket, TCPSocketListener } from "bun";

export interface TcpProxy {
  port: number;
  /** Closes every connection and refuses new ones. */
  cut(): void;
  restore(): void;
  close(): void;
}

/** A socket end with its own write queue, so backpressure never drops bytes. */
class End {
  socket?: Socket<any>;
  queue: Uint8Array[] = [];
  write(chunk: Uint8Array) {
    this.queue.push(new Uint8Array(chunk));
    this.flush();
  }
  flush() {
    if (!this.socket) return;
    while (this.queue.length) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n < head.length) {
        this.queue[0] = head.subarray(Math.max(0, n));
        return;
      }
      this.queue.shift();
    }
  }
  end() {
    this.socket?.terminate();
  }
}

interface Pair {
  client: End;
  upstream: End;
}

export function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): TcpProxy {
  let up = true;
  const pairs = new Set<Pair>();
  const listener: TCPSocketListener<{ pair: Pair }> = Bun.listen<{ pair: Pair }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        if (!up) return void client.terminate();
        const pair: Pair = { client: new End(), upstream: new End() };
        pair.client.socket = client;
        client.data = { pair };
        pairs.add(pair);
        Bun.connect<undefined>({
          hostname: targetHost,
          port: targetPort,
          socket: {
            open(upstream) {
              pair.upstream.socket = upstream;
              pair.upstream.flush();
            },
            data(_s, chunk) {
              pair.client.write(chunk);
            },
            drain() {
              pair.upstream.flush();
            },
            close() {
              pair.client.end();
              pairs.delete(pair);
            },
            error() {
              pair.client.end();
            },
          },
        }).catch(() => pair.client.end());
      },
      data(client, chunk) {
        client.data.pair.upstream.write(chunk);
      },
      drain(client) {
        client.data.pair.client.flush();
      },
      close(client) {
        client.data?.pair.upstream.end();
        if (client.data) pairs.delete(client.data.pair);
      },
    },
  });
  return {
    port: listener.port,
    cut() {
      up = false;
      for (const p of pairs) {
        p.client.end();
        p.upstream.end();
      }
      pairs.clear();
    },
    restore() {
      up = true;
    },
    close() {
      this.cut();
      listener.stop(true);
    },
  };
}
