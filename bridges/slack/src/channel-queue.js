// Posts to one channel at most once per `intervalMs` (Slack allows about one message per second
// per channel); channels do not wait for each other. Each task runs after the previous one of its
// channel finished, so the parts of a split reply stay in order.
export class ChannelQueue {
  constructor({ intervalMs = 1000 } = {}) {
    this.intervalMs = intervalMs;
    this.channels = new Map(); // channel -> { tail: Promise, last: ms }
  }

  run(channel, task) {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { tail: Promise.resolve(), last: 0, waiting: 0 };
      this.channels.set(channel, entry);
    }
    entry.waiting += 1;
    const result = entry.tail.then(async () => {
      const wait = entry.last + this.intervalMs - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      try {
        return await task();
      } finally {
        entry.last = Date.now();
        entry.waiting -= 1;
        if (entry.waiting === 0 && this.channels.get(channel) === entry) {
          // Forget idle channels once their interval has passed, so the map does not grow forever.
          setTimeout(() => {
            if (entry.waiting === 0 && this.channels.get(channel) === entry) this.channels.delete(channel);
          }, this.intervalMs).unref();
        }
      }
    });
    entry.tail = result.catch(() => {});
    return result;
  }
}
