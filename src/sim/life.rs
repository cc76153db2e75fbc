//! The life of a simulated book: when each order, customer, server or sub-user is
//! created, when it is busy or quiet, when it ends, and whether it wakes up again.
//!
//! A simulator given a [`Lifecycle`] answers as a book that changes over time (what
//! the long simulation drives); without one it answers as the fixed book the demo
//! and most tests use. Every life is a pure function of the seed, the kind of entity
//! and its number, so two runs with the same seed see the same history.

use chrono::{NaiveDate, TimeDelta};

use super::mix;

/// How a book's entities come and go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// Seed of every life.
    pub seed: u64,
    /// The first day of the history; a quarter of the entities exist from it on.
    pub start: NaiveDate,
    /// Days over which entities are created (and end).
    pub days: u32,
}

/// One entity's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    /// The day it was created.
    pub born: NaiveDate,
    /// The day it ended (is terminated, deleted), if it does.
    pub ends: Option<NaiveDate>,
    /// The day it came back after ending, if it does.
    pub wakes: Option<NaiveDate>,
}

/// Kinds of entity, so that order 3 and customer 3 live different lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A HydraProxy order.
    Order = 1,
    /// An InfiniteProxies customer.
    Customer = 2,
    /// A Hostens server.
    Server = 3,
    /// A ProxyShard sub-user.
    SubUser = 4,
}

impl Lifecycle {
    fn draw(&self, kind: Kind, id: u64, salt: u64) -> u64 {
        mix(&[self.seed, kind as u64, id, salt])
    }

    /// The life of entity `id` of `kind`.
    pub fn life(&self, kind: Kind, id: u64) -> Life {
        let span = u64::from(self.days.max(2));
        let born = if self.draw(kind, id, 1).is_multiple_of(4) {
            self.start
        } else {
            self.start + TimeDelta::days((self.draw(kind, id, 2) % (span / 2)) as i64)
        };
        let ends = (self.draw(kind, id, 3) % 5 < 2)
            .then(|| born + TimeDelta::days(20 + (self.draw(kind, id, 4) % 120) as i64));
        let wakes = ends
            .filter(|_| self.draw(kind, id, 5).is_multiple_of(3))
            .map(|e| e + TimeDelta::days(10 + (self.draw(kind, id, 6) % 50) as i64));
        Life { born, ends, wakes }
    }

    /// Whether the entity exists on `day` (created, and not ended or woken again).
    pub fn alive(&self, kind: Kind, id: u64, day: NaiveDate) -> bool {
        let life = self.life(kind, id);
        day >= life.born
            && (life.ends.is_none_or(|e| day < e) || life.wakes.is_some_and(|w| day >= w))
    }

    /// Whether the entity is used on `day`: alive, and not in one of its quiet weeks
    /// (about one week in four).
    pub fn busy(&self, kind: Kind, id: u64, day: NaiveDate) -> bool {
        let week = (day - self.start).num_days().max(0) as u64 / 7;
        self.alive(kind, id, day) && !self.draw(kind, id, 100 + week).is_multiple_of(4)
    }

    /// Whether the entity's counter is reset (a sub-user recreated) at the start of `day`:
    /// about one day in forty.
    pub fn recreated(&self, kind: Kind, id: u64, day: NaiveDate) -> bool {
        let n = (day - self.start).num_days().max(0) as u64;
        n > 0 && self.draw(kind, id, 10_000 + n).is_multiple_of(40)
    }

    /// The latest day at or before `day` that started with a reset of the entity's
    /// counter, if any since it was born.
    pub fn last_reset(&self, kind: Kind, id: u64, day: NaiveDate) -> Option<NaiveDate> {
        let born = self.life(kind, id).born;
        let mut d = day;
        while d > born {
            if self.recreated(kind, id, d) {
                return Some(d);
            }
            d -= TimeDelta::days(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle() -> Lifecycle {
        Lifecycle {
            seed: 7,
            start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
            days: 365,
        }
    }

    /// A book of a hundred entities has some of every fate: there from the start, born
    /// later, ended, woken; and every life is in order.
    #[test]
    fn lives_cover_every_fate() {
        let c = cycle();
        let lives: Vec<Life> = (0..100).map(|i| c.life(Kind::Order, i)).collect();
        assert!(lives.iter().any(|l| l.born == c.start));
        assert!(lives.iter().any(|l| l.born > c.start));
        assert!(lives.iter().any(|l| l.ends.is_some() && l.wakes.is_none()));
        assert!(lives.iter().any(|l| l.wakes.is_some()));
        for l in lives {
            assert!(l.ends.is_none_or(|e| e > l.born));
            assert!(l.wakes.is_none_or(|w| l.ends.is_some_and(|e| w > e)));
        }
        assert_eq!(
            c.life(Kind::Order, 3),
            c.life(Kind::Order, 3),
            "a pure function"
        );
    }
}
