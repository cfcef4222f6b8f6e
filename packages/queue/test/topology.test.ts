import { describeRedisTarget, parseNodeList, redisTargetFromEnv, shardOf, shardPrefix, shardQueueName } from '../src';

// Which Redis the environment names, and which shard a webhook's deliveries go to.

describe('redisTargetFromEnv', () => {
  it('one server by default, or REDIS_URL', () => {
    expect(redisTargetFromEnv({})).toEqual({ kind: 'server', url: 'redis://127.0.0.1:6379' });
    expect(redisTargetFromEnv({ REDIS_URL: 'rediss://cache:6380' })).toEqual({ kind: 'server', url: 'rediss://cache:6380' });
  });

  it('a cluster from host:port entries, credentials and TLS from URL entries', () => {
    expect(redisTargetFromEnv({ REDIS_CLUSTER_NODES: 'r1:6379, 10.0.0.2:7000,[::1]:7001' })).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'r1', port: 6379 }, { host: '10.0.0.2', port: 7000 }, { host: '::1', port: 7001 }],
    });
    expect(redisTargetFromEnv({ REDIS_CLUSTER_NODES: 'rediss://default:p%40ss@c1.example.com:6380,c2.example.com:6380' })).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'c1.example.com', port: 6380 }, { host: 'c2.example.com', port: 6380 }],
      tls: true,
      username: 'default',
      password: 'p@ss',
    });
  });

  it('Sentinel from its sentinels and master name', () => {
    expect(redisTargetFromEnv({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_MASTER: 'mymaster' })).toEqual({
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }],
      name: 'mymaster',
    });
  });

  it('describes where it goes without credentials', () => {
    const target = redisTargetFromEnv({ REDIS_CLUSTER_NODES: 'redis://u:secret@c1:6379' });
    expect(describeRedisTarget(target)).toBe('Redis Cluster c1:6379');
    expect(describeRedisTarget({ kind: 'server', url: 'redis://:secret@cache:6379/0' })).toBe('Redis cache:6379');
    expect(parseNodeList('h:1').password).toBeUndefined();
  });
});

describe('shards', () => {
  it('a webhook always maps to the same shard (FNV-1a of its id), on every process and version', () => {
    expect(shardOf('wh_abc', 1)).toBe(0);
    // Pinned values: changing the hash would move every webhook's line to another queue.
    expect([shardOf('wh_abc', 16), shardOf('wh_abc', 7), shardOf('wh_2Zx9Qk', 16)]).toEqual([1, 3, 4]);
    // FNV-1a("a") is 0xe40c292c.
    expect(shardOf('a', 2 ** 32)).toBe(0xe40c292c);
  });

  it('spreads webhooks over the shards', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i += 1) counts[shardOf(`wh_${i.toString(36)}x${(i * 7919).toString(36)}`, 16)] += 1;
    for (const n of counts) expect(n).toBeGreaterThan(700);
  });

  it('shard 0 on one server keeps the single queue\'s keys; on a cluster each shard has its own hash tag', () => {
    expect(shardQueueName(0)).toBe('hookline-deliveries');
    expect(shardQueueName(5)).toBe('hookline-deliveries-5');
    expect(shardPrefix('hookline', 0, false)).toBe('hookline');
    expect(shardPrefix('hookline', 5, false)).toBe('hookline');
    expect(shardPrefix('hookline', 5, true)).toBe('{hookline:5}');
  });
});
