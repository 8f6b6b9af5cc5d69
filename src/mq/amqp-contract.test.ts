/**
 * The shared Queue contract (queue.contract.ts) against RabbitMQ, so the embedded queue and the
 * AMQP one are held to the same test. AMQP-only behaviour stays in amqp.test.ts.
 */
import { describe } from "bun:test";
import { createTestVhost, haveServices } from "../../test/support/services.ts";
import { createLogger } from "../runtime/log.ts";
import { createAmqpQueue } from "./amqp.ts";
import { CONTRACT_LIMITS, queueContract } from "./queue.contract.ts";

describe.skipIf(!(await haveServices))("amqp queue", () => {
  queueContract("RabbitMQ", async () => {
    const vhost = await createTestVhost();
    let n = 0;
    return {
      open: () => createAmqpQueue({ url: vhost.url, log: createLogger("silent"), instanceId: `contract-${++n}`, deliveryLimits: CONTRACT_LIMITS }),
      cleanup: () => vhost.drop(),
    };
  });
});
